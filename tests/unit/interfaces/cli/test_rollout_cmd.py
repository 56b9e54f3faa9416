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
    r = runner.invoke(app, ["rollout", "promote", "scorer", "--json", *p])
    events = json.loads(r.output)["events"]
    assert [e["action"] for e in events] == ["begin", "abort", "retry", "promote"]
    r = runner.invoke(app, ["rollback", "scorer", *p])
    assert r.exit_code == 0 and "champion is version 1" in r.output
    # The previous champion of version 1 is now version 2: a rollback undoes a rollback.
    r = runner.invoke(app, ["rollback", "scorer", *p])
    assert r.exit_code == 0 and f"champion is version {v2}" in r.output
    r = runner.invoke(app, ["rollout", "start", "scorer", "--to", "7", *p])
    assert r.exit_code == 2 and "7" in r.output
