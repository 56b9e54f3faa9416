"""``keel audit`` and ``keel keys`` through a Typer app holding both sub-apps."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.engine import make_engine
from keelwork.core.audit.merkle import verify_inclusion
from keelwork.interfaces.cli import audit_cmd, keys_cmd

runner = CliRunner()
app = typer.Typer()
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(keys_cmd.app, name="keys")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEELWORK_USER", "ana")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _db(project: Path) -> sqlite3.Connection:
    return sqlite3.connect(project / ".keel" / "keel.db")


def _create(name: str, *scopes: str) -> str:
    args = ["keys", "create", "--name", name]
    for s in scopes:
        args += ["--scope", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_keys_create_list_revoke_and_the_audit_trail(project: Path) -> None:
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0  # no store yet: empty log
    key = _create("ops", "admin")
    assert key.startswith("kw_") and "\n" not in key  # stdout holds only the key
    web = _create("web", "predict")
    engine = make_engine(f"sqlite:///{project / '.keel' / 'keel.db'}")
    principal = ApiKeyStore(engine).verify(key)
    engine.dispose()
    assert principal is not None and principal.name == "ops"

    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert [(k["name"], k["scopes"], k["active"]) for k in listed] == [
        ("ops", ["admin"], True), ("web", ["predict"], True)]
    assert key.split("_", 2)[2] not in json.dumps(listed)
    web_id = web.split("_")[1]
    revoked = runner.invoke(app, ["keys", "revoke", web_id])
    assert revoked.exit_code == 0 and f"revoked API key {web_id}" in revoked.output
    active = json.loads(runner.invoke(app, ["keys", "list", "--json", "--active"]).stdout)
    assert [k["name"] for k in active] == ["ops"]
    table = runner.invoke(app, ["keys", "list"])
    assert "ops" in table.output and "by ana" in table.output

    shown = json.loads(runner.invoke(app, ["audit", "show", "--json"]).stdout)
    assert [(e["seq"], e["actor"], e["action"], e["target"]) for e in shown] == [
        (1, "ana", "key.create", key.split("_")[1]), (2, "ana", "key.create", web_id),
        (3, "ana", "key.revoke", web_id)]
    only = json.loads(runner.invoke(app, ["audit", "show", "--json", "--action",
                                          "key.revoke"]).stdout)
    assert [e["seq"] for e in only] == [3]
    assert json.loads(runner.invoke(app, ["audit", "show", "--json", "--actor", "bob"]
                                    ).stdout) == []
    assert json.loads(runner.invoke(app, ["audit", "show", "--json", "--since", "1h"]
                                    ).stdout)[0]["seq"] == 1
    assert json.loads(runner.invoke(app, ["audit", "show", "--json", "--until", "1h"]
                                    ).stdout) == []
    assert [e["seq"] for e in json.loads(runner.invoke(
        app, ["audit", "show", "--json", "-n", "2"]).stdout)] == [2, 3]
    table = runner.invoke(app, ["audit", "show"])
    assert table.exit_code == 0 and "key.revoke" in table.output

    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries verified" in ok.output


def test_verify_exits_1_and_names_the_first_bad_entry(project: Path) -> None:
    for name in ("a", "b", "c", "d"):
        _create(name, "predict")
    with _db(project) as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "entry 2 (hash_mismatch)" in result.output and "actor=mallory" in result.output
    as_json = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    assert (as_json["ok"], as_json["first_bad_seq"], as_json["reason"]) == (False, 2,
                                                                           "hash_mismatch")
    assert as_json["entry"]["actor"] == "mallory"


@pytest.mark.parametrize(("sql", "seq", "words"), [
    ("UPDATE audit_log SET seq = 'x3' WHERE seq = 3", 3, "Entry 3 is missing"),
    ("UPDATE audit_log SET seq = 'x4' WHERE seq = 4", 4, "sequence number 'x4'"),
    ("UPDATE audit_log SET actor = CAST(actor AS BLOB) WHERE seq = 3", 3,
     "holds 'actor' as bytes"),
    ("UPDATE audit_log SET prev_hash = CAST(prev_hash AS BLOB) WHERE seq = 3", 3,
     "holds 'prev_hash' as bytes"),
    ("UPDATE audit_head SET seq = 'x'", 4, "The stored audit head is damaged"),
])
def test_verify_reports_a_tampered_type_at_its_entry(project: Path, sql: str, seq: int,
                                                      words: str) -> None:
    """these rows made ``keel audit verify`` end in a traceback (ValueError, TypeError)."""
    for name in ("a", "b", "c", "d"):
        _create(name, "predict")
    with _db(project) as conn:
        conn.execute(sql)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"audit log broken at entry {seq} " in result.output and words in result.output
    as_json = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    assert (as_json["ok"], as_json["first_bad_seq"]) == (False, seq)


def test_deleted_row_and_anchor(project: Path) -> None:
    for name in ("a", "b", "c"):
        _create(name, "predict")
    head = runner.invoke(app, ["audit", "head"])
    anchor = project / "anchor.json"
    anchor.write_text(head.stdout)
    assert json.loads(head.stdout)["seq"] == 3
    assert runner.invoke(app, ["audit", "verify", "--anchor", str(anchor)]).exit_code == 0
    with _db(project) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 3")
        conn.execute("UPDATE audit_head SET seq = 2, count = 2, hash = "
                     "(SELECT hash FROM audit_log WHERE seq = 2)")
    # The project's own anchor catches the cut tail without any option (issue 13 item 15).
    kept = runner.invoke(app, ["audit", "verify"])
    assert kept.exit_code == 1 and "entry 3 (truncated)" in kept.output, kept.output
    result = runner.invoke(app, ["audit", "verify", "--anchor", str(anchor)])
    assert result.exit_code == 1 and "entry 3 (truncated)" in result.output
    assert "not in the log" in result.output
    # The copy of the anchor file is accepted as --anchor too.
    (project / "copy.json").write_text((project / ".keel" / "audit-anchor.json").read_text())
    assert runner.invoke(app, ["audit", "verify", "--anchor", "copy.json"]).exit_code == 1


def _cut_tail(project: Path, keep: int) -> None:
    """What a tamperer with write access to the database does: delete rows, move the head."""
    with _db(project) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (keep,))
        if keep:
            conn.execute("UPDATE audit_head SET seq = ?, count = ?, hash = (SELECT hash FROM "
                         "audit_log WHERE seq = ?)", (keep, keep, keep))
        else:
            conn.execute("UPDATE audit_head SET seq = 0, count = 0, hash = ?", ("0" * 64,))


def test_verify_uses_the_kept_anchor_by_default(project: Path) -> None:
    for name in ("a", "b", "c", "d"):
        _create(name, "predict")
    kept = json.loads((project / ".keel" / "audit-anchor.json").read_text())
    (head,) = kept["heads"].values()
    assert (head["seq"], head["count"]) == (4, 4)
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "Anchored by" in ok.output and "(entry 4)" in ok.output
    _cut_tail(project, 2)
    result = runner.invoke(app, ["audit", "verify", "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert (out["ok"], out["reason"], out["first_bad_seq"]) == (False, "truncated", 4)


def test_appends_after_a_cut_do_not_carry_the_anchor_along(project: Path) -> None:
    for name in ("a", "b", "c"):
        _create(name, "predict")
    _cut_tail(project, 1)
    for name in ("d", "e", "f", "g"):  # the chain grows past the anchored entry again
        _create(name, "predict")
    kept = json.loads((project / ".keel" / "audit-anchor.json").read_text())
    assert [h["seq"] for h in kept["heads"].values()] == [3]
    result = runner.invoke(app, ["audit", "verify", "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert (out["reason"], out["first_bad_seq"]) == ("anchor_mismatch", 3)


def test_an_emptied_log_fails_while_keys_exist(project: Path) -> None:
    _create("a", "predict")
    _create("b", "admin")
    _cut_tail(project, 0)
    (project / ".keel" / "audit-anchor.json").unlink()  # even without the anchor
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert "(truncated)" in result.output and "2 API key(s)" in result.output


def test_an_external_anchor_is_kept_and_checked(
        project: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path_factory.mktemp("worm") / "anchor.json"
    monkeypatch.setenv("KEELWORK_AUDIT_ANCHOR", str(outside))
    for name in ("a", "b", "c"):
        _create(name, "predict")
    assert [h["seq"] for h in json.loads(outside.read_text())["heads"].values()] == [3]
    _cut_tail(project, 2)
    (project / ".keel" / "audit-anchor.json").unlink()  # whoever cut it also had the project
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "entry 3 (truncated)" in result.output, result.output


def test_prove_prints_a_checkable_inclusion_proof(project: Path) -> None:
    for name in ("a", "b", "c"):
        _create(name, "predict")
    result = runner.invoke(app, ["audit", "prove", "2"])
    assert result.exit_code == 0, result.output
    proof = json.loads(result.stdout)
    assert (proof["seq"], proof["size"]) == (2, 3)
    assert verify_inclusion(proof["index"], proof["size"], bytes.fromhex(proof["leaf"]),
                            [bytes.fromhex(p) for p in proof["proof"]],
                            bytes.fromhex(proof["root"]))
    missing = runner.invoke(app, ["audit", "prove", "9"])
    assert missing.exit_code == 2 and "Entry 9" in missing.output


def test_bad_input_is_a_clear_error(project: Path) -> None:
    bad = runner.invoke(app, ["keys", "create", "--scope", "root", "--name", "x"])
    assert bad.exit_code == 2 and "got root" in bad.output
    (project / "anchor.json").write_text("{not json")
    r = runner.invoke(app, ["audit", "verify", "--anchor", "anchor.json"])
    assert r.exit_code == 2 and "anchor.json: not valid JSON" in r.output
    (project / "anchor.json").write_text('{"seq": 1}')
    r = runner.invoke(app, ["audit", "verify", "--anchor", "anchor.json"])
    assert r.exit_code == 2 and "'hash'" in r.output
    r = runner.invoke(app, ["audit", "show", "--since", "yesterday"])
    assert r.exit_code == 2 and "--since" in r.output
    r = runner.invoke(app, ["keys", "revoke", "nope"])
    assert r.exit_code == 2 and "No API key has the id 'nope'" in r.output
    _create("x", "admin")
    r = runner.invoke(app, ["keys", "revoke", "nope"])
    assert r.exit_code == 2 and "No API key has the id 'nope'" in r.output
