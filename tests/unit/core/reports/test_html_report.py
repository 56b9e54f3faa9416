"""HTML reports: structure, escaping, the JSON's numbers, null parts, no external URL."""

from __future__ import annotations

import json
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from keelwork.core.monitors import TableProfile, drift_report, profile_table
from keelwork.core.reports import render_drift_html, render_monitor_html
from keelwork.core.reports.charts import fmt
from keelwork.core.reports.page import MAX_DETAILED
from keelwork.interfaces.cli.main import app


def _drift(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The drift report's JSON form (what ``keel drift --json`` prints)."""
    return drift_report(*args, **kwargs).to_dict()


EVIL = '<script>alert("x")</script>'
_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}
_SVG_VOID = {"rect", "line", "circle", "polygon", "polyline", "path"}


def _tables(n: int, shift: float, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    cats = ["a", "b", EVIL] + (["new & <b>bold</b>"] if shift else [])
    return pa.table({"age": rng.normal(40 + shift * 10, 10, n),
                     "income": rng.lognormal(10, 1, n),
                     f"col {EVIL}": rng.normal(0, 1, n),
                     "city": rng.choice(cats, n)})


def _profiles(n: int = 5000, shift: float = 1.0) -> tuple[TableProfile, TableProfile]:
    ref = profile_table(_tables(n, 0.0, 1))
    return ref, profile_table(_tables(n, shift, 2), reference=ref)


class _Balance(HTMLParser):
    """Checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def _check_page(page: str) -> _Balance:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    # Self-contained: no URL, no script, nothing fetched, no JavaScript at all.
    for banned in ("http://", "https://", "src=", "href=", "url(", "<script", "@import",
                   "javascript:", "onerror", "onload"):
        assert banned not in lowered, banned
    return parser


def _floats(node: Any) -> list[float]:
    if isinstance(node, float):
        return [node]
    if isinstance(node, dict):
        return [f for v in node.values() for f in _floats(v)]
    if isinstance(node, list):
        return [f for v in node for f in _floats(v)]
    return []


def _shows(page: str, value: float) -> bool:
    return f'<data value="{value!r}">{fmt(value)}</data>' in page


# --------------------------------------------------------------------------- drift
def test_drift_page_has_every_column_verdict_and_the_jsons_numbers() -> None:
    ref, cur = _profiles()
    report = json.loads(json.dumps(_drift(ref, cur)))  # what --out writes, read back
    page = render_drift_html(report, title="t", reference_name="ref.csv",
                             current_name="cur.csv")
    _check_page(page)
    assert sorted(report["summary"]["drifted"]) == ["age", "city"]
    for col in report["columns"]:
        assert f"<b>{escape(col['column'])}</b>" in page
        assert _shows(page, col["score"]) and _shows(page, col["threshold"])
    assert page.count('class="tag drift"') == 2
    assert f"({report['rows']['current']} rows)" in page
    share = report["summary"]["share_drifted"]
    assert f'<data value="{share!r}">{share * 100:.1f}%</data>' in page


def test_user_strings_are_escaped_everywhere() -> None:
    ref, cur = _profiles()
    report = _drift(ref, cur)
    page = render_drift_html(report, title=EVIL, reference_name=EVIL, current_name=EVIL,
                             reference_profile=ref, current_profile=cur)
    _check_page(page)
    assert EVIL not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "col &lt;script&gt;" in page  # the column name, escaped
    assert "new &amp; &lt;b&gt;bold&lt;/b&gt;" in page  # the new category, escaped


def test_distributions_chart_every_column_from_the_profiles() -> None:
    ref, cur = _profiles()
    report = _drift(ref, cur)
    plain = render_drift_html(report)
    page = render_drift_html(report, reference_profile=ref, current_profile=cur)
    _check_page(page)
    assert "Distributions" not in plain and "Distributions" in page
    # One distribution chart per column: a step line per numeric, paired bars per category.
    assert page.count("<polyline") == 3
    assert page.count('aria-label="reference and current category shares"') == 1
    assert len(re.findall(r'<div class="card"><h3>', page)) == len(report["columns"])


def test_not_compared_columns_and_empty_report_render() -> None:
    ref, _ = _profiles()
    partial = profile_table(pa.table({"age": [30.0, 41.0]}), reference=ref)
    report = _drift(ref, partial)
    page = render_drift_html(report, reference_profile=ref, current_profile=partial)
    _check_page(page)
    # income, the escaped column, city: missing, a schema change that counts as drift
    # (was a neutral "other" tag; issue 11 calls a silently missing column a defect)
    assert page.count('class="tag drift">missing<') == 3
    assert "is in the reference but not in the current data" in page
    empty = render_drift_html({"kind": "keelwork.drift-report"})
    _check_page(empty)
    assert "0 / 0" in empty


def test_html_size_does_not_grow_with_rows() -> None:
    sizes = []
    for n in (2_000, 200_000):
        ref, cur = _profiles(n)
        sizes.append(len(render_drift_html(_drift(ref, cur), reference_profile=ref,
                                           current_profile=cur)))
    # 100x the rows: the same charts, only the digits of the counts differ.
    assert abs(sizes[1] - sizes[0]) < 0.05 * sizes[0], sizes
    assert sizes[1] < 60_000, sizes


def test_cli_writes_the_html_atomically_beside_the_json(tmp_path: Path) -> None:
    pq.write_table(_tables(3000, 0.0, 1), tmp_path / "ref.parquet")
    pq.write_table(_tables(3000, 1.0, 2), tmp_path / "cur.parquet")
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    r = CliRunner().invoke(app, ["drift", str(tmp_path / "ref.parquet"),
                                 str(tmp_path / "cur.parquet"), "--out", str(out),
                                 "--html", str(html)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cur.parquet", "r.html", "r.json",
                                                           "ref.parquet"]
    report = json.loads(out.read_text())
    page = html.read_text()
    _check_page(page)
    for value in _floats(report["columns"]):
        assert f'<data value="{value!r}">' in page
    assert "Distributions" in page and "ref.parquet (profiled now)" in page


# --------------------------------------------------------------------------- monitor
def monitor_report(windows: int = 4) -> dict[str, Any]:
    """A monitor report in the runner's shape: drift, segments, realised and estimated."""
    ref = profile_table(_tables(3000, 0.0, 1))
    out = []
    for i in range(windows):
        cur = profile_table(_tables(1000, i * 0.3, 10 + i), reference=ref)
        drift = _drift(ref, cur)
        seg = _drift(ref, profile_table(_tables(300, i * 0.3, 20 + i), reference=ref))
        acc = 0.9 - 0.04 * i
        out.append({
            "start": f"2026-01-01T{i:02d}:00:00+00:00",
            "end": f"2026-01-01T{i + 1:02d}:00:00+00:00",
            "predictions": 1000 + i, "status": "ok", "notes": [f"note {EVIL}"], "skipped": 0,
            "drift": drift,
            "segments": [{"field": "region", "value": f"eu{EVIL}", "predictions": 300,
                          "summary": seg["summary"], "columns": seg["columns"]}],
            "quality": {
                "realised": None if i == 1 else {
                    "accuracy": acc, "f1": acc - 0.05, "labelled": 600 - 100 * i,
                    "coverage": 0.6 - 0.1 * i, "delay_p50_s": 3600.0, "delay_p90_s": 7200.0,
                    "complete": False, "state": "waiting"},
                "estimated": None if i == 2 else {
                    "method": "cbpe", "accuracy": acc + 0.01,
                    "accuracy_band": [acc - 0.02, acc + 0.04], "f1": None, "f1_band": None,
                    "roc_auc": 0.91 - 0.01 * i, "roc_auc_band": [0.89, 0.93],
                    "alert": {"accuracy": i == 3}}}})
    return {"kind": "keelwork.monitor-report", "version": 1, "model": f"sent{EVIL}",
            "window": "1h", "generated_at": "2026-01-01T05:00:00+00:00",
            "reference": {"rows": 3000, "source": "data/train.csv",
                          "created_at": "2025-12-31T00:00:00+00:00"},
            "windows": out}


def test_monitor_page_has_series_heatmap_quality_and_every_number() -> None:
    report = json.loads(json.dumps(monitor_report()))
    page = render_monitor_html(report)
    _check_page(page)
    assert EVIL not in page and "sent&lt;script&gt;" in page
    for heading in ("Share of columns drifted", "Drift per column", "Quality", "accuracy",
                    "roc_auc", "label coverage", "Windows"):
        assert heading in page
    assert page.count("<details>") == 4
    for w in report["windows"]:
        for col in w["drift"]["columns"]:
            assert _shows(page, col["score"])
        for q in w["quality"].values():
            for key in ("accuracy", "roc_auc"):
                if q and q.get(key) is not None:
                    assert _shows(page, q[key])
            if q and q.get("accuracy_band"):
                assert all(_shows(page, b) for b in q["accuracy_band"])
        assert f">{w['predictions']}<" in page
    assert page.count(">alert<") == 1
    # Four windows of four columns in the heat map, one rect each.
    assert len(re.findall(r"<rect [^>]*><title>", page)) == 16


@pytest.mark.parametrize("mutate", [
    lambda r: r.update(windows=[]),
    lambda r: r.pop("windows"),
    lambda r: r.pop("reference"),
    lambda r: [w.update(drift=None, quality=None, segments=None) for w in r["windows"]],
    lambda r: [w.pop(k) for w in r["windows"] for k in ("drift", "quality", "segments")],
    lambda r: [w["quality"].update(realised=None, estimated=None) for w in r["windows"]],
    lambda r: [w["drift"]["columns"][0].update(score=None, threshold=None)
               for w in r["windows"]],
])
def test_monitor_page_tolerates_null_and_missing_parts(mutate: Any) -> None:
    report = monitor_report(3)
    mutate(report)
    page = render_monitor_html(report)
    _check_page(page)
    assert "<h1>Monitoring: " in page


def test_long_monitor_report_details_flagged_and_latest_windows_only() -> None:
    report = monitor_report(4)
    quiet = {**report["windows"][0], "drift": None}
    quiet["quality"] = {"realised": None, "estimated": None}
    flagged = report["windows"][3]  # drifted and alerting
    windows = [dict(quiet, start=f"2026-01-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00")
               for i in range(100)]
    windows[5] = dict(flagged, start="2026-01-01T05:00:00+00:00")
    page = render_monitor_html({**report, "windows": windows})
    _check_page(page)
    assert page.count("<details>") == MAX_DETAILED
    assert "48 of 100 windows in detail" in page
    assert "window 01-01 05:00 (" in page  # the flagged window, though old
    assert "window 01-05 03:00 (" in page and "window 01-02 00:00 (" not in page
    # Cells of a 100-window heat map are narrow but never negative.
    assert not re.search(r'<rect [^>]*width="-', page)


def test_segment_quality_and_note_are_shown() -> None:
    report = monitor_report(1)
    seg = report["windows"][0]["segments"][0]
    seg.update(quality={"accuracy": 0.8125, "labelled": 160},
               note="The reference holds no region = 'x'; compared with the whole reference.")
    page = render_monitor_html(report)
    assert _shows(page, 0.8125) and ">160<" in page
    assert "compared with the whole reference." in page


def test_window_that_compared_nothing_is_a_gap_not_zero_drift() -> None:
    report = monitor_report(3)
    summary = report["windows"][1]["drift"]["summary"]
    summary.update(not_compared=[c["column"] for c in report["windows"][1]["drift"]["columns"]],
                   drifted=[], share_drifted=0.0)
    page = render_monitor_html(report)
    assert "<title>share drifted 01-01 00:00: " in page
    assert "<title>share drifted 01-01 01:00: " not in page
    assert "<title>share drifted 01-01 02:00: " in page


def test_quality_axes_stay_within_zero_and_one() -> None:
    """Accuracy near 1 with a band reaching 1 drew an axis up to 1.2: a metric in [0, 1] gets
    an axis in [0, 1]; errors (mae) keep theirs."""
    from keelwork.core.reports.charts import line_chart

    report = json.loads(json.dumps(monitor_report()))
    for i, w in enumerate(report["windows"]):
        w["quality"]["realised"] = {"accuracy": 0.97 + 0.01 * (i % 2), "mae": 40.0 + i}
        w["quality"]["estimated"] = {"method": "cbpe", "accuracy": 0.98,
                                     "accuracy_band": [0.95, 1.0]}
    page = render_monitor_html(report)
    quality = page[page.index("<h2>Quality</h2>"):]
    accuracy = quality[quality.index("<h3>accuracy</h3>"):quality.index("<h3>mae</h3>")]
    ticks = [float(t) for t in re.findall(r'text-anchor="end"[^>]*>([0-9.]+)<', accuracy)]
    assert ticks and max(ticks) <= 1.0 and min(ticks) >= 0.0, ticks
    unbounded = line_chart(["a", "b"], [("x", [0.97, 0.99])], bands=[("x", [[0.95, 1.0]] * 2)])
    assert max(float(t) for t in re.findall(r'text-anchor="end"[^>]*>([0-9.]+)<',
                                            unbounded)) > 1.0  # what the quality chart drew
