"""The Grafana dashboard generated from keel.yaml: valid against the dashboard JSON model's
schema (vendored in tests/fixtures/grafana, see its description), laid out on Grafana's grid,
and reading only series keelwork exports or its SLO rules record."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from keelwork.core.grafana import expressions, grafana_dashboard
from keelwork.core.slo.objectives import slo_set
from keelwork.core.slo.rules import rule_groups
from keelwork.spec.model import KeelSpec

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "grafana"
                     / "dashboard.schema.json").read_text())

FULL = {"service": {"name": "credit", "owners": ["ml@example.com"]},
        "models": [{"name": "scorer", "runtime": "python", "artifact": "a:b"},
                   {"name": "ranker", "runtime": "python", "artifact": "a:c"}],
        "slos": {"availability": 0.999, "error_rate": 0.01, "latency_p99_ms": 100,
                 "throughput_rps": 2, "window": "7d"},
        "cost": {"per_1k_predictions": 0.5}}
BARE = {"service": {"name": "bare", "owners": ["ml@example.com"]},
        "models": [{"name": "only", "runtime": "python", "artifact": "a:b"}]}


def _board(raw: dict[str, Any]) -> dict[str, Any]:
    return grafana_dashboard(KeelSpec.model_validate(raw))


@pytest.mark.parametrize("raw", [FULL, BARE], ids=["slos-and-cost", "bare"])
def test_validates_against_the_dashboard_schema(raw: dict[str, Any]) -> None:
    board = _board(raw)
    jsonschema.validate(board, SCHEMA)
    json.dumps(board, allow_nan=False)  # plain JSON, importable as it is


def test_the_schema_refuses_what_grafana_would_not_import() -> None:
    board = _board(BARE)
    for broken in ({**board, "schemaVersion": "39"}, {**board, "surprise": 1},
                   {**board, "panels": [{**board["panels"][1], "gridPos": {"h": 8, "w": 30,
                                                                           "x": 0, "y": 0}}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def _cells(board: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    return [(p["id"], p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"],
             p["gridPos"]["h"]) for p in board["panels"]]


def test_panels_have_unique_ids_and_do_not_overlap_on_the_grid() -> None:
    cells = _cells(_board(FULL))
    assert len({c[0] for c in cells}) == len(cells)
    taken: set[tuple[int, int]] = set()
    for _, x, y, w, h in cells:
        assert x + w <= 24
        squares = {(x + i, y + j) for i in range(w) for j in range(h)}
        assert not squares & taken
        taken |= squares


def test_per_model_rows_with_traffic_errors_latency_burn_rates_and_cost() -> None:
    board = _board(FULL)
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Model scorer", "Model ranker"]
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    # per model: traffic, errors, latency, 3 SLOs with a budget, cost (throughput has none)
    assert len(titles) == 2 * 7
    assert titles.count("Latency quantiles") == 2 and titles.count("Cost per hour") == 2
    assert "Availability SLO: burn rate" in titles and "Throughput SLO: burn rate" not in titles
    latency = next(p for p in board["panels"] if p["title"] == "Latency quantiles")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    assert all("keelwork_request_duration_seconds_bucket" in t["expr"]
               for t in latency["targets"])


def test_no_slos_no_burn_panels_no_prices_no_cost() -> None:
    titles = [p["title"] for p in _board(BARE)["panels"]]
    assert not any("SLO" in t or "Cost" in t for t in titles)


def test_burn_rates_read_exactly_the_recording_rules_keel_slo_rules_writes() -> None:
    spec = KeelSpec.model_validate(FULL)
    recorded = {r["record"] for f in rule_groups(slo_set(spec)).values()
                for g in f["groups"] for r in g["rules"] if "record" in r}
    used = {m for e in expressions(grafana_dashboard(spec))
            for m in re.findall(r"keelwork:[a-z_:0-9]+", e)}
    assert used and used <= recorded, used - recorded
    # every tier window of the 7d SLO is charted: the scaled workbook's, shortest to longest
    windows = {m.rsplit("rate", 1)[1] for m in used if "error_ratio" in m}
    assert windows == {m.rsplit("rate", 1)[1] for m in recorded if "error_ratio" in m} - {"7d"}


def test_model_names_are_quoted_as_promql_strings() -> None:
    raw = {**BARE, "models": [{"name": "a-b.c", "runtime": "python", "artifact": "a:b"}]}
    assert all('model="a-b.c"' in e for e in expressions(_board(raw)))
