"""The generated SLO rules on the real Prometheus tools: ``promtool check rules`` and ``promtool
test rules`` (each alert absent at minute T-1, firing at T), ``amtool check-config`` on the
inhibit rules.

Without promtool (Debian package ``prometheus``) these are skipped with the reason, unless
``$CI`` is set: then they fail, because CI must install it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from prom import run, tool

SPEC = ("service: {name: iris, owners: [ml@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}, "
        "{name: n, runtime: python, artifact: 'a:c'}]\n"
        "slos: {availability: 0.999, error_rate: 0.01, latency_p99_ms: 100, "
        "throughput_rps: 2, window: 7d, min_events: 30}\n")


def _rules(tmp_path: Path, spec: str, *extra: str) -> Path:
    (tmp_path / "keel.yaml").write_text(spec)
    out = tmp_path / "rules"
    result = CliRunner().invoke(app, ["slo", "rules", "--project", str(tmp_path), "--out",
                                      str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_every_slo_passes_promtool_check_and_its_own_test(tmp_path: Path) -> None:
    promtool = tool("promtool")
    out = _rules(tmp_path, SPEC, "--label", "job=keel")
    rules = sorted(p.name for p in out.glob("*.rules.yml"))
    assert len(rules) == 4
    assert "SUCCESS" in run(promtool, "check", "rules", *rules, cwd=out)
    for test in sorted(out.glob("*.test.yml")):
        assert "SUCCESS" in run(promtool, "test", "rules", test.name, cwd=out)


@pytest.mark.slow
def test_a_broken_rule_fails_its_test(tmp_path: Path) -> None:
    """The generated tests test something: a threshold a third as high fires early."""
    promtool = tool("promtool")
    out = _rules(tmp_path, SPEC)
    rules = out / "error_rate.rules.yml"
    text = rules.read_text()
    assert "> 0.144\\n" in text  # in a double-quoted YAML string
    rules.write_text(text.replace("> 0.144\\n", "> 0.05\\n"))
    done = subprocess.run([promtool, "test", "rules", "error_rate.test.yml"], cwd=out,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "KeelworkErrorRateBurnFast" in done.stdout + done.stderr


def test_the_inhibit_rules_load_in_alertmanager(tmp_path: Path) -> None:
    amtool = tool("amtool")
    out = _rules(tmp_path, SPEC)
    inhibit = (out / "inhibit_rules.yml").read_text()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: owners}\nreceivers: [{name: owners}]\n" + inhibit)
    assert "SUCCESS" in run(amtool, "check-config", str(config), cwd=tmp_path)


@pytest.mark.slow
def test_without_yielding_the_slow_page_would_page_after_the_fast_one(tmp_path: Path) -> None:
    """The generated case "every request fails for a while" tests something: the slow page's
    rule without its ``unless`` (a faster page tier's burn) fires once the fast page resolved,
    its 7-minute short window still burning."""
    from ruamel.yaml import YAML

    promtool = tool("promtool")
    out = _rules(tmp_path, SPEC)
    assert "SUCCESS" in run(promtool, "test", "rules", "availability.test.yml", cwd=out)
    path = out / "availability.rules.yml"
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(path.read_text())
    [slow] = [r for r in doc["groups"][0]["rules"]
              if r.get("alert") == "KeelworkAvailabilityBurnSlow"]
    assert "\nunless on (model)" in slow["expr"]
    slow["expr"] = slow["expr"].split("\nunless on (model)")[0]
    with path.open("w") as fh:
        yaml.dump(doc, fh)
    done = subprocess.run([promtool, "test", "rules", "availability.test.yml"], cwd=out,
                          capture_output=True, text=True, timeout=300)
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "nor after the fast one resolved" in text, text
