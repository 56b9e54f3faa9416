"""Typed reports: one summary, the JSON they always printed, HTML, and inline display."""

from __future__ import annotations

import html
import json

import numpy as np

from keelwork.core.monitors.drift import drift_report
from keelwork.core.monitors.profile import profile_table
from keelwork.core.monitors.report import (
    REPORT_KIND,
    ColumnDrift,
    DriftReport,
    MissingTextColumn,
    MonitorReport,
    summarise,
    window_drifted,
)


def _report() -> DriftReport:
    rng = np.random.default_rng(3)
    ref = profile_table({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000),
                         "gone": rng.normal(0, 1, 2000)})
    cur = profile_table({"x": rng.normal(1, 1, 2000), "c": rng.choice(["a", "b"], 2000)},
                        reference=ref)
    return drift_report(ref, cur, added=["new"])


def test_the_json_form_is_the_drift_report_s() -> None:
    report = _report()
    d = report.to_dict()
    assert list(d) == ["kind", "version", "rows", "summary", "columns"]
    assert d["kind"] == REPORT_KIND and d["version"] == 1
    assert d["rows"] == {"reference": 2000, "current": 2000}
    assert d["summary"] == {"columns": 3, "drifted": ["x", "gone"], "detectable": [],
                            "not_compared": [], "share_drifted": 2 / 3,
                            "schema": {"missing": ["gone"], "added": ["new"]}}
    assert [c["column"] for c in d["columns"]] == ["x", "c", "gone"]
    assert d["columns"][0] == report.column("x").as_dict()
    assert json.loads(json.dumps(d)) == d


def test_appended_columns_and_notes_are_summarised_once() -> None:
    report = _report()
    more = report.with_columns([
        ColumnDrift("t:chars", "numeric", status="no_drift", drift=False, reason="quiet",
                    details={"detectable": True}),
        MissingTextColumn.of("review"),
    ]).with_note("text drift of 'x': failed")
    s = more.summary
    assert s.columns == 5 and s.drifted == ("x", "gone", "review")
    assert s.detectable == ("t:chars",) and s.missing == ("gone", "review")
    assert s.share_drifted == 3 / 5
    assert more.to_dict()["notes"] == ["text drift of 'x': failed"]
    assert more.to_dict()["columns"][-1] == {
        "column": "review", "kind": "text", "status": "missing", "drift": True, "score": None,
        "reason": "Text column 'review' is in the reference but not in the current data: a "
                  "schema change, counted as drift."}
    assert summarise(more.columns, more.added) == s
    assert report.summary.columns == 3  # the original is untouched


def test_nothing_compared_shares_nothing() -> None:
    s = summarise([ColumnDrift("x", "numeric", status="empty", drift=None, reason="no rows")])
    assert s.share_drifted == 0.0 and s.not_compared == ("x",) and s.drifted == ()


def test_to_html_charts_the_distributions_it_holds() -> None:
    report = _report()
    page = report.to_html(title="Drift of <cur>", current_name="cur.csv")
    assert page.startswith("<!DOCTYPE html>") and "Drift of &lt;cur&gt;" in page
    assert "<h2>Distributions</h2>" in page
    bare = DriftReport(report.reference_rows, report.current_rows, report.columns,
                       added=report.added)
    assert "<h2>Distributions</h2>" not in bare.to_html()
    assert bare == report  # the profiles are not part of the report's value


def test_repr_html_is_the_page_in_a_frame() -> None:
    report = _report()
    shown = report._repr_html_()
    assert shown.startswith('<iframe srcdoc="') and "<style>" not in shown
    assert html.unescape(shown.split('srcdoc="', 1)[1].split('" style=', 1)[0]) == \
        report.to_html()


def test_the_monitor_report() -> None:
    drift = _report().to_dict()
    window = {"start": "2024-03-01T00:00:00+00:00", "end": "2024-03-01T01:00:00+00:00",
              "predictions": 10, "status": "drift", "notes": [], "skipped": 0,
              "drift": drift, "segments": [], "segments_skipped": [], "quality": {}}
    report = MonitorReport(model="m", model_version=2, window="1h",
                           generated_at="2024-03-01T02:00:00+00:00",
                           reference={"id": 1, "rows": 2000}, windows=(window,))
    d = report.to_dict()
    assert list(d) == ["kind", "version", "model", "model_version", "window", "generated_at",
                       "reference", "windows"]
    assert d["kind"] == "keelwork.monitor-report" and d["windows"] == [window]
    assert report.drifted and window_drifted(window)
    quiet = {**window, "drift": {**drift, "summary": {**drift["summary"], "drifted": []}}}
    assert not window_drifted(quiet)
    assert window_drifted({**quiet, "segments": [{"summary": {"drifted": ["x"]}}]})
    assert "Monitoring: m" in report.to_html()
    assert report._repr_html_().startswith("<iframe srcdoc=")
