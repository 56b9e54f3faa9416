"""``keel flags`` through the real ``keel`` app: put, list, delete, bad files with the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from keelwork.service.registration import register_model

runner = CliRunner()

SPEC = """\
service: {name: s, owners: [a@b.c]}
models: [{name: sentiment, runtime: python, artifact: "x:y"}]
flags:
  - {name: acme, model: sentiment, rules: [{tenants: [acme], serve: "2"}]}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEELWORK_USER", "ana")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    (tmp_path / "keel.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_put_overrides_yaml_list_shows_it_delete_reverts(project: Path) -> None:
    listed = runner.invoke(app, ["flags", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["flags"][0]["rules"][0]["serve"] == "2"

    (project / "flag.yaml").write_text(
        "name: acme\nmodel: sentiment\nrules:\n  - {tenants: [acme], serve: challenger}\n")
    put = runner.invoke(app, ["flags", "put", "flag.yaml"])
    assert put.exit_code == 0, put.output
    table = runner.invoke(app, ["flags", "list"])
    assert "tenant in ['acme'] -> challenger" in table.output
    assert runner.invoke(app, ["flags", "delete", "acme"]).exit_code == 0
    after = json.loads(runner.invoke(app, ["flags", "list", "--json"]).output)
    assert after["flags"][0]["rules"][0]["serve"] == "2"
    missing = runner.invoke(app, ["flags", "delete", "acme"])
    assert missing.exit_code != 0 and "No stored flag" in missing.output


def test_bad_flag_files_say_where(project: Path) -> None:
    (project / "bad.yaml").write_text("name: x\nmodel: sentiment\nrules:\n  - {serve: 2\n")
    r = runner.invoke(app, ["flags", "put", "bad.yaml"])
    assert r.exit_code != 0 and "bad.yaml" in r.output and "line" in r.output.lower()
    (project / "other.yaml").write_text("name: x\nmodel: other\nrules: []\n")
    r = runner.invoke(app, ["flags", "put", "other.yaml"])
    assert r.exit_code != 0 and "does not serve" in r.output
    (project / "rule.json").write_text('[{"name": "x", "model": "sentiment", '
                                       '"rules": [{"serve": "2"}]}]')
    r = runner.invoke(app, ["flags", "put", "rule.json"])
    assert r.exit_code != 0 and "flag #1: rules.0" in r.output
    listed = json.loads(runner.invoke(app, ["flags", "list", "--json"]).output)
    assert [f["name"] for f in listed["flags"]] == ["acme"]  # nothing was written


def test_changes_are_in_the_audit_log(project: Path) -> None:
    (project / "flag.json").write_text('{"name": "acme", "model": "sentiment", '
                                       '"rules": [{"tenants": ["acme"], "serve": "3"}]}')
    assert runner.invoke(app, ["flags", "put", "flag.json"]).exit_code == 0
    assert runner.invoke(app, ["flags", "delete", "acme", "--actor", "bob"]).exit_code == 0
    shown = runner.invoke(app, ["audit", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    entries = [(e["actor"], e["action"], e["target"]) for e in json.loads(shown.output)]
    assert entries == [("ana", "flag.put", "acme"), ("bob", "flag.delete", "acme")]
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0


def test_put_refuses_a_version_or_alias_the_model_does_not_have(project: Path) -> None:
    """Issue 11.5: a flag serving version 9 was stored and then fell back on every request."""
    from keelwork.adapters.stores.registry_store import open_registry

    with open_registry(project, audit=False) as registry:
        for _ in range(2):
            register_model(registry, "sentiment", "x:y", "python", verify=False)
    (project / "nine.yaml").write_text(
        "name: acme\nmodel: sentiment\nrules:\n  - {tenants: [acme], serve: \"9\"}\n")
    r = runner.invoke(app, ["flags", "put", "nine.yaml"])
    assert r.exit_code == 2, r.output
    assert "nine.yaml" in r.output and "flags[acme].rules.0.serve = '9'" in r.output
    assert "no version 9" in r.output
    (project / "beta.yaml").write_text(
        "name: acme\nmodel: sentiment\nrules: []\ndefault: beta\n")
    r = runner.invoke(app, ["flags", "put", "beta.yaml"])
    assert r.exit_code == 2 and "flags[acme].default = 'beta'" in r.output
    listed = json.loads(runner.invoke(app, ["flags", "list", "--json"]).output)
    assert listed["flags"][0]["rules"][0]["serve"] == "2"  # nothing was stored
    (project / "two.yaml").write_text(
        "name: acme\nmodel: sentiment\nrules:\n  - {tenants: [acme], serve: \"2\"}\n"
        "default: champion\n")
    assert runner.invoke(app, ["flags", "put", "two.yaml"]).exit_code == 0


def test_put_refuses_a_billion_laughs_file_at_once(project: Path) -> None:
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    lines.append("flags: [{name: acme, model: sentiment, rules: [{serve: '2', tags: *a9}]}]")
    (project / "laughs.yaml").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    r = runner.invoke(app, ["flags", "put", "laughs.yaml"])
    assert time.monotonic() - started < 5.0
    assert r.exit_code == 2, r.output
    assert "YAML aliases" in r.output and "10000 nodes" in r.output
