"""Registry changes land in the audit log: same transaction as the change, the caller's actor."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.errors import AuditError, ModelNotFoundError
from keelwork.service.registration import register_model


class ListAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []

    def append(self, *, actor: str, action: str, target: str, details: Any = None) -> None:
        self.entries.append((actor, action, target))


def _artifact(tmp_path: Path, name: str = "model.onnx", data: bytes = b"onnx-bytes") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_register_and_alias_moves_are_audited(tmp_path: Path, store_url: str) -> None:
    with open_registry(tmp_path, store_url) as registry:
        register_model(registry, "churn", _artifact(tmp_path), "onnx", verify=False,
                          aliases=["champion"], created_by="ana")
        register_model(registry, "churn", _artifact(tmp_path, "b.onnx", b"other"), "onnx",
                          verify=False, created_by="ana")
        registry.set_alias("churn", 2, "champion", actor="bob", reason="better AUC")
        registry.set_alias("churn", 2, "champion", actor="bob")  # no change: nothing recorded
        registry.remove_alias("churn", "champion", actor="carl", reason="rollback")
        with pytest.raises(ModelNotFoundError):
            registry.set_alias("churn", 9, "champion", actor="bob")
        audit = registry.audit
        assert isinstance(audit, AuditLog)
        entries = audit.query(limit=None)
        assert [(e.actor, e.action, e.target) for e in entries] == [
            ("ana", "model.register", "churn:1"), ("ana", "alias.set", "churn@champion"),
            ("ana", "model.register", "churn:2"), ("bob", "alias.set", "churn@champion"),
            ("carl", "alias.remove", "churn@champion")]
        assert entries[0].details["aliases"] == ["champion"]
        assert entries[0].details["sha256"] == registry.get("churn", 1).sha256
        assert entries[3].details == {"from_version": 1, "to_version": 2,
                                      "reason": "better AUC"}
        assert entries[4].details["to_version"] is None
        assert audit.verify().ok


def test_a_failing_audit_append_rolls_the_change_back(tmp_path: Path, store_url: str) -> None:
    with open_registry(tmp_path, store_url) as registry:
        register_model(registry, "churn", _artifact(tmp_path), "onnx", verify=False,
                       created_by="ana")
        with registry.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_head"))
        with pytest.raises(AuditError, match="no head row"):
            registry.set_alias("churn", 1, "champion", actor="bob")
        # Same transaction: the alias did not move, since its audit entry could not be written.
        assert registry.alias_history("churn") == []
        assert registry.resolve("churn").aliases == ()


def test_another_sink_is_called_after_the_commit(tmp_path: Path, store_url: str) -> None:
    sink = ListAudit()
    with open_registry(tmp_path, store_url, audit=sink) as registry:
        register_model(registry, "m", _artifact(tmp_path), "onnx", verify=False, created_by="ana",
                          aliases=["champion"])
        registry.remove_alias("m", "champion", actor="bob")
    assert sink.entries == [("ana", "model.register", "m:1"), ("ana", "alias.set", "m@champion"),
                            ("bob", "alias.remove", "m@champion")]


def test_audit_can_be_turned_off(tmp_path: Path, store_url: str) -> None:
    with open_registry(tmp_path, store_url, audit=False) as registry:
        assert registry.audit is None
        register_model(registry, "m", _artifact(tmp_path), "onnx", verify=False, created_by="ana")


def test_concurrent_registrations_keep_one_chain(tmp_path: Path, store_url: str) -> None:
    with open_registry(tmp_path, store_url):
        pass  # create the schema once
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            with open_registry(tmp_path, store_url) as registry:
                for i in range(4):
                    register_model(registry, f"m{k % 2}",
                                   _artifact(tmp_path, f"a{k}-{i}", bytes([k, i])),
                                   "onnx", verify=False, created_by=f"t{k}",
                                   aliases=["champion"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_registry(tmp_path, store_url) as registry:
        audit = registry.audit
        assert isinstance(audit, AuditLog)
        result = audit.verify()
        assert result.ok, result.message
        # 16 registrations, each with its alias move.
        assert result.checked == 32
        registered = [e.target for e in audit.query(action="model.register", limit=None)]
        assert sorted(registered) == sorted(f"m{m}:{v}" for m in (0, 1) for v in range(1, 9))


def test_registry_changes_move_the_anchor_and_a_cut_tail_is_found(tmp_path: Path,
                                                                  store_url: str) -> None:
    """Issue 13 item 15, on both stores: entries appended in the registry's transaction move
    the project's anchor after the commit, so deleting the last rows and rewriting
    ``audit_head`` no longer verifies, nor does emptying the log while models exist."""
    with open_registry(tmp_path, store_url) as registry:
        register_model(registry, "churn", _artifact(tmp_path), "onnx", verify=False,
                          aliases=["champion"], created_by="ana")
        registry.remove_alias("churn", "champion", actor="bob")
        audit = registry.audit
        assert isinstance(audit, AuditLog)
        kept = [f.read(audit.store_key) for f in audit.anchors]
        assert kept[0] is not None and kept[0] == audit.head() and kept[0].seq == 3
        assert "password" not in audit.store_key.lower()
        assert audit.verify().ok
        with registry.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log WHERE seq > 1"))
            conn.execute(text("UPDATE audit_head SET seq = 1, count = 1, hash = "
                              "(SELECT hash FROM audit_log WHERE seq = 1)"))
        assert audit.verify(kept=False).ok  # what the stored head alone cannot see
        cut = audit.verify()
        assert (cut.ok, cut.reason, cut.first_bad_seq) == (False, "truncated", 3)
        with registry.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
            conn.execute(text("UPDATE audit_head SET seq = 0, count = 0, hash = :g"),
                         {"g": "0" * 64})
        emptied = audit.verify(kept=False)
        assert (emptied.ok, emptied.reason) == (False, "truncated")
        assert "1 model(s)" in emptied.message
