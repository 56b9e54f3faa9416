"""The fleet metrics table: one row per publishing process, folded into one retired row once
it stops being seen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.fleet_metrics_store import RETIRED, FleetMetricsStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, clock: Clock) -> FleetMetricsStore:
    store = FleetMetricsStore(make_engine(f"sqlite:///{tmp_path / 'keel.db'}"), clock)
    store.ensure_schema()
    store.ensure_schema()  # safe to repeat
    return store


def _concat(retired: str | None, dead: list[str]) -> str:
    return json.dumps((json.loads(retired) if retired else []) + [json.loads(p) for p in dead])


def test_publish_creates_then_rewrites_one_row_per_process(tmp_path: Path) -> None:
    clock = Clock()
    store = _store(tmp_path, clock)
    assert store.publish("a", '"1"', first=True)
    clock.now += 1
    assert store.publish("a", '"2"', first=False)
    assert store.publish("b", '"x"', first=True)
    rows = {r.replica: r for r in store.rows()}
    assert set(rows) == {"a", "b"}
    assert rows["a"].payload == '"2"' and rows["a"].seen_at == 1001.0
    with pytest.raises(ValueError, match="retired"):
        store.publish(RETIRED, "{}", first=True)


def test_fold_moves_the_unseen_into_the_retired_row_and_tells_the_publisher(
        tmp_path: Path) -> None:
    clock = Clock()
    store = _store(tmp_path, clock)
    store.publish("a", '"a1"', first=True)
    store.publish("b", '"b1"', first=True)
    clock.now += 20
    store.publish("b", '"b2"', first=False)
    assert store.fold(clock.now - 10, _concat) == 1
    rows = {r.replica: r.payload for r in store.rows()}
    assert rows == {"b": '"b2"', RETIRED: '["a1"]'}
    # "a" comes back: its row is gone, so an update tells it (nothing written)
    assert not store.publish("a", '"a2"', first=False)
    assert {r.replica for r in store.rows()} == {"b", RETIRED}
    store.retire("b")  # a process that stops: folded at the next fold, whatever its age
    assert store.fold(clock.now - 10, _concat) == 1
    assert {r.replica: r.payload for r in store.rows()} == {RETIRED: '["a1", "b2"]'}
    assert store.fold(clock.now - 10, _concat) == 0


def test_a_process_seen_since_the_bound_is_not_folded(tmp_path: Path) -> None:
    clock = Clock()
    store = _store(tmp_path, clock)
    store.publish("a", '"old"', first=True)
    clock.now += 20
    store.publish("a", '"new"', first=False)

    def nothing(retired: str | None, dead: list[str]) -> str:
        raise AssertionError("nothing may be folded")

    assert store.fold(clock.now - 10, nothing) == 0
    assert {r.replica: r.payload for r in store.rows()} == {"a": '"new"'}
