"""``keel alerts config``: secrets hidden on the terminal, written to a 0600 file with --out,
an unreachable contact refused with its path."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app

runner = CliRunner()
SPEC = """\
service:
  name: churn
  owners: [ml-team@example.com]
  on_call: {contact: pager}
models: [{name: m, runtime: python, artifact: 'x:y'}]
alerts:
  receivers:
    - {name: pager, kind: webhook, url: "${PAGER_URL}"}
"""
SECRET = "https://pager.example/hook/token-98765"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC)
    monkeypatch.setenv("PAGER_URL", SECRET)
    return tmp_path


def test_printed_config_hides_secrets(project: Path) -> None:
    res = runner.invoke(app, ["alerts", "config", "-s", str(project)])
    assert res.exit_code == 0, res.output
    assert "churn-on-call" in res.output and SECRET not in res.output
    assert "<hidden:" in res.output


def test_out_writes_the_real_file(project: Path) -> None:
    out = project / "alertmanager.yml"
    res = runner.invoke(app, ["alerts", "config", "-s", str(project), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert SECRET in out.read_text() and SECRET not in res.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert "2 receiver(s)" in res.output


def test_an_unreachable_contact_is_refused_with_its_path(project: Path) -> None:
    (project / "keel.yaml").write_text(SPEC.replace("contact: pager", "contact: bob"))
    res = runner.invoke(app, ["alerts", "config", "-s", str(project)])
    assert res.exit_code == 2
    assert "service.on_call.contact (line 4)" in " ".join(res.output.split())


def test_group_timing_options_reach_the_route(project: Path) -> None:
    from ruamel.yaml import YAML

    out = project / "alertmanager.yml"
    res = runner.invoke(app, ["alerts", "config", "-s", str(project), "--out", str(out),
                              "--group-wait", "1s", "--group-interval", "2s"])
    assert res.exit_code == 0, res.output
    route = YAML(typ="safe").load(out.read_text())["route"]
    assert (route["group_wait"], route["group_interval"]) == ("1s", "2s")
    default = YAML(typ="safe").load(runner.invoke(app, ["alerts", "config", "-s",
                                                        str(project)]).output)["route"]
    assert (default["group_wait"], default["group_interval"]) == ("30s", "5m")


@pytest.mark.parametrize("bad", ["0s", "5", "1.5s", "2 m", "-1s"])
def test_a_group_timing_that_is_no_duration_is_refused(project: Path, bad: str) -> None:
    res = runner.invoke(app, ["alerts", "config", "-s", str(project), "--group-wait", bad])
    assert res.exit_code == 2
    assert "--group-wait" in res.output and "whole number" in " ".join(res.output.split())


def test_alerts_test_reaches_every_target_and_names_the_silent_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook that answers 200 acknowledges; the owners' mail server is down: exit 1, the
    failed target named by its address, the pager's secret URL never printed."""
    import json

    from alert_sinks import HttpSink, free_port

    pager = HttpSink()
    try:
        (tmp_path / "keel.yaml").write_text(SPEC + f"  smtp: {{smarthost: '127.0.0.1:"
                                            f"{free_port()}'}}\n")
        monkeypatch.setenv("PAGER_URL", pager.url("/hook/token-98765"))
        res = runner.invoke(app, ["alerts", "test", "-p", str(tmp_path), "--json"])
        assert res.exit_code == 1, res.output
        probes = {p["kind"]: p for p in json.loads(res.output)}
        assert probes["webhook"]["acknowledged"] and probes["webhook"]["receivers"] == [
            "churn-on-call"]
        assert not probes["email"]["acknowledged"] and probes["email"]["error"]
        assert probes["email"]["target"] == "churn-owners:email:ml-team@example.com"
        assert "token-98765" not in res.output
        assert [b["alerts"][0]["status"] for _, _, b in pager.received()] == [
            "firing", "resolved"]
    finally:
        pager.stop()
