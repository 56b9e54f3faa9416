"""Leases in the store: taken, renewed, refused while held, taken over after expiry, released;
one winner among racing takers (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.lease_store import LeaseStore


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_take_renew_refuse_expire_take_over_release(engine: Engine) -> None:
    clock = FakeClock()
    store = LeaseStore(engine, clock)
    store.ensure_schema()
    store.ensure_schema()  # idempotent
    assert store.get("bg") is None
    assert store.acquire("bg", "a", 10)
    first = store.get("bg")
    assert first is not None
    assert (first.holder, first.term, first.expires_at) == ("a", 1, clock.now + 10)
    assert not store.acquire("bg", "b", 10)  # held by a
    clock.now += 6
    assert store.acquire("bg", "a", 10)  # renewed: same term, later expiry
    renewed = store.get("bg")
    assert renewed is not None
    assert (renewed.holder, renewed.term, renewed.expires_at) == ("a", 1, clock.now + 10)
    assert renewed.acquired_at == first.acquired_at
    clock.now += 9.9
    assert not store.acquire("bg", "b", 10)  # 0.1 s left
    clock.now += 0.1  # a died: its lease expires
    assert store.acquire("bg", "b", 10)
    taken = store.get("bg")
    assert taken is not None
    assert (taken.holder, taken.term, taken.acquired_at) == ("b", 2, clock.now)
    assert not store.acquire("bg", "a", 10)  # the old holder cannot renew it back
    assert not store.release("bg", "a")  # nor release it
    assert store.release("bg", "b")
    released = store.get("bg")
    assert released is not None and not released.held_at(clock.now)
    assert store.acquire("bg", "a", 10)  # at once, no wait for the expiry
    again = store.get("bg")
    assert again is not None and (again.holder, again.term) == ("a", 3)
    assert store.acquire("other", "b", 10)  # names are independent
    with pytest.raises(ValueError, match="time-to-live must be > 0"):
        store.acquire("bg", "a", 0)


def test_a_lapsed_holder_starts_a_new_term(engine: Engine) -> None:
    clock = FakeClock()
    store = LeaseStore(engine, clock)
    store.ensure_schema()
    assert store.acquire("bg", "a", 5)
    clock.now += 5
    assert store.acquire("bg", "a", 5)
    state = store.get("bg")
    assert state is not None and (state.holder, state.term) == ("a", 2)


@pytest.mark.parametrize("fresh", [True, False])
def test_racing_takers_one_wins(engine: Engine, fresh: bool) -> None:
    clock = FakeClock()
    store = LeaseStore(engine, clock)
    store.ensure_schema()
    if not fresh:  # an expired row: the race is on the compare-and-set UPDATE
        assert store.acquire("bg", "old", 1)
        clock.now += 2
    n = 6
    barrier = threading.Barrier(n)
    won: list[str] = []
    errors: list[BaseException] = []

    def take(holder: str) -> None:
        try:
            barrier.wait(timeout=30)
            if store.acquire("bg", holder, 30):
                won.append(holder)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(f"p{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(won) == 1
    state = store.get("bg")
    assert state is not None and state.holder == won[0]
    assert state.term == (1 if fresh else 2)
