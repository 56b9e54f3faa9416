"""Flags in the store: changes take effect in a running source without a restart, audited."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.core.flags import FlagContext
from keelwork.service.flags.source import FlagSource
from keelwork.spec.flags import FlagSpec


class ListAudit:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, *, actor: str, action: str, target: str,
               details: Any = None) -> dict[str, Any]:
        entry = {"actor": actor, "action": action, "target": target, "details": details}
        self.entries.append(entry)
        return entry


def _rule(tenant: str, serve: str) -> dict[str, Any]:
    return {"name": "f", "model": "m", "rules": [{"tenants": [tenant], "serve": serve}]}


def test_put_delete_reload_and_audit(store_url: str) -> None:
    engine = make_engine(store_url)
    audit = ListAudit()
    store = FlagStore(engine, audit)
    store.ensure_schema()
    store.ensure_schema()  # idempotent
    yaml_flag = FlagSpec.model_validate(_rule("acme", "1"))
    source = FlagSource([yaml_flag], store)
    source.reload()
    assert source.current.choose("m", FlagContext("acme")).ref == "1"  # type: ignore[union-attr]
    assert not source.check()  # nothing moved

    store.put(_rule("acme", "2"), actor="ops@example.com")  # overrides keel.yaml's by name
    assert source.check()
    assert source.current.choose("m", FlagContext("acme")).ref == "2"  # type: ignore[union-attr]

    assert store.delete("f", actor="ops@example.com") is True
    assert source.check()
    assert source.current.choose("m", FlagContext("acme")).ref == "1"  # type: ignore[union-attr]
    assert store.delete("f", actor="ops@example.com") is False

    assert [(e["action"], e["target"], e["actor"]) for e in audit.entries] == [
        ("flag.put", "f", "ops@example.com"), ("flag.delete", "f", "ops@example.com")]
    with pytest.raises(ValidationError):
        store.put({"name": "g", "model": "m", "rules": [{"serve": "2"}]}, actor="x")
    assert [b["name"] for b in store.bodies()] == []
    engine.dispose()


def test_a_body_broken_by_hand_is_reported_and_serves_the_default(store_url: str) -> None:
    engine = make_engine(store_url)
    store = FlagStore(engine)
    store.ensure_schema()
    store.put(_rule("acme", "2"), actor="ops")
    with engine.begin() as conn:
        conn.execute(text("UPDATE model_flags SET body = '{\"name\": \"f\", \"model\": \"m\", "
                          "\"rules\": 5}', revision = revision + 1"))
    source = FlagSource([], store)
    source.reload()
    assert [b.name for b in source.current.broken] == ["f"]
    assert source.current.choose("m", FlagContext("acme")) is None
    assert source.current.errors() == {"f": 1}
    engine.dispose()


def test_concurrent_writers_each_move_the_revision(store_url: str) -> None:
    engine = make_engine(store_url)
    store = FlagStore(engine)
    store.ensure_schema()
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(5):
                store.put({"name": f"f{i}", "model": "m",
                           "rules": [{"tenants": [str(j)], "serve": "1"}]}, actor=f"w{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.revision() == 20
    assert sorted(b["name"] for b in store.bodies()) == ["f0", "f1", "f2", "f3"]
    engine.dispose()
