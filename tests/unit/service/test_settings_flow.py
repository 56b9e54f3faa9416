"""The ``user`` and ``audit_anchor`` settings (``KEELWORK_USER``, ``KEELWORK_AUDIT_ANCHOR``) reach
the stores from each edge that reads the environment: ``keel`` commands, the server (``keel
serve``'s ``build_server_app``) and ``keelwork.Project``. The stores never read it themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import keelwork
from keelwork.adapters.stores.audit_store import open_audit_log
from keelwork.interfaces.cli.main import app
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec
from keelwork.spec.settings import load_settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPEC = f"""\
service: {{name: settings-flow, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{FIXTURES}"}}
"""
runner = CliRunner()


@pytest.fixture
def anchor(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The second anchor file, named by ``KEELWORK_AUDIT_ANCHOR``; ``KEELWORK_USER`` is ana."""
    outside = tmp_path_factory.mktemp("worm") / "anchor.json"
    monkeypatch.setenv("KEELWORK_USER", "ana")
    monkeypatch.setenv("KEELWORK_AUDIT_ANCHOR", str(outside))
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return outside


def _trail(project: Path) -> list[tuple[str, str]]:
    """(actor, action) of every audit entry, oldest first."""
    log = open_audit_log(project)  # no extra anchor: only reading
    try:
        return [(e.actor, e.action) for e in log.entries()]
    finally:
        log.close()


def _anchored(anchor: Path) -> list[int]:
    return [h["seq"] for h in json.loads(anchor.read_text())["heads"].values()]


def test_keel_commands_act_as_the_user_and_keep_the_extra_anchor(tmp_path: Path,
                                                                 anchor: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    registered = runner.invoke(app, [
        "models", "register", "adder", "fakes:total", "--runtime", "python", "--options",
        json.dumps({"path": str(FIXTURES)}), "--alias", "champion", "--project", str(tmp_path),
        "--json"])
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.stdout)["created_by"] == "ana"
    snap = runner.invoke(app, ["data", "snapshot", str(tmp_path / "data.csv"), "--name", "d",
                               "--project", str(tmp_path)])
    assert snap.exit_code == 0, snap.output
    listed = runner.invoke(app, ["data", "list", "--json", "--project", str(tmp_path)])
    assert json.loads(listed.stdout)[0]["created_by"] == "ana"
    assert _trail(tmp_path) == [("ana", "model.register"), ("ana", "alias.set")]
    assert _anchored(anchor) == [2]
    verified = runner.invoke(app, ["audit", "verify", "--project", str(tmp_path)])
    assert verified.exit_code == 0, verified.output


def test_the_server_acts_as_the_user_and_keeps_the_extra_anchor(tmp_path: Path,
                                                                anchor: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    build_server_app(load_spec(tmp_path / "keel.yaml"), freeze_gc=False, monitor_interval_s=0)
    trail = _trail(tmp_path)
    assert trail and {who for who, _ in trail} == {"ana"}
    assert {"model.register", "config.load"} <= {what for _, what in trail}
    assert _anchored(anchor) == [len(trail)]


def test_a_project_acts_as_the_user_and_keeps_the_extra_anchor(
        tmp_path: Path, anchor: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    project = keelwork.Project(tmp_path)
    reg = project.register("fakes:total", "adder", runtime="python",
                           options={"path": str(FIXTURES)}, aliases=["champion"])
    assert reg.model_version.created_by == "ana"
    assert _anchored(anchor) == [2]
    assert project.audit.verify().ok
    # Settings given to the project win over the environment (it reads it only when given none).
    other = tmp_path_factory.mktemp("other") / "anchor.json"
    given = keelwork.Project(tmp_path, settings=load_settings(user="bo", audit_anchor=other))
    again = given.register("fakes:total", "adder", runtime="python",
                           options={"path": str(FIXTURES)})
    assert again.model_version.created_by == "bo"
    assert _anchored(other) == [3] and _anchored(anchor) == [2]
    assert _trail(tmp_path)[-1] == ("bo", "model.register")
