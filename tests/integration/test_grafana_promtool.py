"""Every PromQL expression of ``keel dashboard grafana``'s output parsed by the real promtool.

Each expression becomes a recording rule of one rule file and ``promtool check rules`` parses
them all (a syntax error, an unknown function or a bad matcher fails it). Without promtool
(Debian package ``prometheus``) the test is skipped, unless ``$CI`` is set: then it fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from keelwork.core.grafana import expressions
from keelwork.interfaces.cli.main import app
from prom import run, tool

SPEC = ("service: {name: credit, owners: [ml@example.com]}\n"
        "models: [{name: scorer, runtime: python, artifact: 'a:b'}, "
        "{name: 'rank-er', runtime: python, artifact: 'a:c'}]\n"
        "slos: {availability: 0.999, error_rate: 0.01, latency_p99_ms: 100, "
        "throughput_rps: 2}\n"
        "cost: {per_1k_predictions: 0.5, cpu_hour: 0.04}\n")


@pytest.mark.slow
def test_every_dashboard_expression_parses_in_promtool(tmp_path: Path) -> None:
    promtool = tool("promtool")
    (tmp_path / "keel.yaml").write_text(SPEC)
    out = tmp_path / "keel-grafana.json"
    result = CliRunner().invoke(app, ["dashboard", "grafana", "--spec",
                                      str(tmp_path / "keel.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "PromQL expression(s)" in result.output
    exprs = expressions(json.loads(out.read_text()))
    assert len(exprs) >= 2 * 5
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"keel_dashboard_check_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "exprs.rules.yml").write_text(yaml.safe_dump(rules))
    said = run(promtool, "check", "rules", "exprs.rules.yml", cwd=tmp_path)
    assert f"SUCCESS: {len(exprs)} rules found" in said


@pytest.mark.slow
def test_promtool_refuses_a_broken_expression(tmp_path: Path) -> None:
    """The check above can fail: a broken expression makes promtool exit non-zero."""
    promtool = tool("promtool")
    rules = {"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum by (le (x)"}]}]}
    (tmp_path / "bad.rules.yml").write_text(yaml.safe_dump(rules))
    with pytest.raises(AssertionError):
        run(promtool, "check", "rules", "bad.rules.yml", cwd=tmp_path)
