"""The store's record of which replica uses which version's deployment: a use is recorded once
per (app, replica) however often it is taken, renewed, dropped; unused apps are forgotten only
when no replica's row of them is fresh."""

from __future__ import annotations

from pathlib import Path

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.version_uses import VersionUses


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_uses_renewed_dropped_and_forgotten(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    clock = _Clock()
    uses = VersionUses(engine, clock)
    uses.ensure_schema()
    uses.ensure_schema()  # safe to repeat
    target = {"name": "m", "version": 1}
    uses.use("svc--version--m-v1", "r1", target)
    uses.use("svc--version--m-v1", "r1", target)  # again: still one row
    uses.use("svc--version--m-v1", "r2", target)
    uses.use("svc--version--m-v2", "r1", {"name": "m", "version": 2})
    uses.use("other--version--m-v1", "r9", target)
    assert uses.needed("svc--version--") == {"svc--version--m-v1": target,
                                            "svc--version--m-v2": {"name": "m", "version": 2}}
    uses.drop("svc--version--m-v2", "r1")
    assert set(uses.needed("svc--version--")) == {"svc--version--m-v1"}
    clock.now += 20
    uses.renew(["svc--version--m-v1"], "r2")  # r1 stopped renewing; r2 goes on
    clock.now += 15
    assert uses.forget_unused("svc--version--", 30) == []  # r2's use is fresh
    assert set(uses.needed("svc--version--")) == {"svc--version--m-v1"}
    clock.now += 30
    assert uses.forget_unused("svc--version--", 30) == ["svc--version--m-v1"]
    assert uses.needed("svc--version--") == {}
    assert set(uses.needed("other--")) == {"other--version--m-v1"}  # another service's
    engine.dispose()
