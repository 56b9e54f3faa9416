"""``keel rollout`` and ``keel rollback`` on a project's store, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from keelwork.interfaces.cli import rollout_cmd
from rollout_project import make_project, open_project, register

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(rollout_cmd.app, name="rollout")
    app.command("rollback")(rollout_cmd.rollback)
    return app


def test_cli_start_status_abort_retry_promote_rollback(tmp_path: Path) -> None:
    service = open_project(make_project(tmp_path))
    v2 = register(service, "good_twin")
    service.registry.close()
    app, p = _app(), ["--project", str(tmp_path)]

    r = runner.invoke(app, ["rollout", "start", "scorer", "--to", str(v2), "--interval", "30s",
                            "--json", *p])
    assert r.exit_code == 0, r.output
    started = json.loads(r.output)["rollout"]
    assert (started["phase"], started["interval_s"], started["weight"]) == ("progressing",
                                                                            30.0, 50)
    r = runner.invoke(app, ["rollout", "status", "scorer", *p])
    assert r.exit_code == 0 and "progressing" in r.output and "begin" in r.output
    r = runner.invoke(app, ["rollout", "abort", "scorer", "--reason", "looks off", "--json", *p])
    assert json.loads(r.output)["rollout"]["phase"] == "aborted"
    r = runner.invoke(app, ["rollout", "promote", "scorer", *p])
    assert r.exit_code == 2 and "is aborted: it cannot promote" in r.output
    r = runner.invoke(app, ["rollout", "retry", "scorer", "--json", *p])
    retried = json.loads(r.output)
    assert retried["rollout"]["phase"] == "progressing" and retried["rollout"]["step"] == 0
    # Issue 12.9: promoting by hand a version whose rollout was aborted needs --force.
    r = runner.invoke(app, ["rollout", "promote", "scorer", "--json", *p])
    assert r.exit_code == 2 and "was aborted" in r.output and "--force" in r.output
    r = runner.invoke(app, ["rollout", "status", "scorer", "--json", *p])
    assert json.loads(r.output)["rollout"]["phase"] == "progressing"
    r = runner.invoke(app, ["rollout", "promote", "scorer", "--force", *p])
    assert r.exit_code == 0 and "warning:" in r.output and "looks off" in r.output
    r = runner.invoke(app, ["rollout", "status", "scorer", "--json", *p])
    events = json.loads(r.output)["events"]
    assert [e["action"] for e in events] == ["begin", "abort", "retry", "promote"]
    assert "forced: version 2" in events[-1]["reason"]
    r = runner.invoke(app, ["rollback", "scorer", *p])
    assert r.exit_code == 0 and "champion is version 1" in r.output
    # Issue 11.2: a second rollback used to flip back to version 2, the one just rolled
    # back from; now it is refused and nothing moves.
    r = runner.invoke(app, ["rollback", "scorer", *p])
    assert r.exit_code == 2 and "nothing to roll back to" in r.output
    assert f"version {v2} (" in r.output
    r = runner.invoke(app, ["rollout", "start", "scorer", "--to", "7", *p])
    assert r.exit_code == 2 and "7" in r.output


def test_status_shows_each_decisions_gates_with_their_values(tmp_path: Path) -> None:
    """``keel rollout status`` (docs/rollouts.md: "every decision with each gate's observed
    values") used to print only each event's reason, which names the failing gate alone:
    the gates that passed, the no-data ones and the champion's values were in --json only."""
    service = open_project(make_project(tmp_path))
    v2 = register(service, "good_twin")
    service.rollouts.start("scorer", v2, service.resolved.spec.rollout, actor="tester")
    gates = [
        {"gate": "error_rate", "status": "pass", "challenger": 0.0, "champion": 0.0125,
         "threshold": 0.05, "why": "within"},
        {"gate": "p99_latency_ms", "status": "no_data", "challenger": None, "champion": None,
         "threshold": 50.0, "why": "too few requests"},
        {"gate": "accuracy", "status": "fail", "challenger": 0.46667, "champion": 0.98765,
         "threshold": 0.7, "why": "0.4667 < 0.7 (champion 0.9877)"},
    ]
    service.rollouts.act("scorer", "abort", actor="keel-rollout-controller",
                         reason="accuracy 0.4667 < 0.7 (champion 0.9877); failure 1/1",
                         decision={"outcome": "fail", "action": "abort", "gates": gates})
    service.registry.close()

    r = runner.invoke(_app(), ["rollout", "status", "scorer", "--project", str(tmp_path)],
                      env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    table = r.output[r.output.index("decisions"):]
    lines = {line.split("│")[3].strip(): line for line in table.splitlines()
             if line.count("│") > 4 and line.split("│")[3].strip()}
    assert set(lines) == {"error_rate", "p99_latency_ms", "accuracy"}, table
    assert all(v in lines["error_rate"] for v in ("pass", "0.0125", "0.05")), table
    assert "no_data" in lines["p99_latency_ms"] and "n/a" in lines["p99_latency_ms"], table
    assert all(v in lines["accuracy"] for v in ("fail", "0.4667", "0.9877", "0.7")), table
    assert "abort" in lines["error_rate"]  # the decision's first row names its action
