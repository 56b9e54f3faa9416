"""The usage ledger on SQLite and a real PostgreSQL: adds from several servers at once sum up
(an insert that races another becomes an update), per-day sums, pruning."""

from __future__ import annotations

import threading

import pytest

from keelwork.adapters.stores.cost_ledger import CostLedger
from keelwork.adapters.stores.engine import make_engine

T0 = 1_796_860_800.0  # 2026-12-10 00:00 UTC


def test_concurrent_adds_to_one_bucket_all_count(store_url: str) -> None:
    engines = [make_engine(store_url) for _ in range(4)]
    try:
        CostLedger(engines[0]).ensure_schema()
        barrier = threading.Barrier(len(engines))
        errors: list[BaseException] = []

        def server(i: int) -> None:
            ledger = CostLedger(engines[i])
            try:
                barrier.wait()
                for _ in range(10):
                    ledger.add(T0 + 5, {("m", 1): {"predictions": 1, "cpu_seconds": 0.25},
                                        ("m", 2): {"output_tokens": 3}})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=server, args=(i,)) for i in range(len(engines))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        ledger = CostLedger(engines[0])
        rows = {(r.model, r.version): r for r in ledger.usage(T0, T0 + 600)}
        assert rows[("m", 1)].predictions == 40
        assert rows[("m", 1)].cpu_seconds == pytest.approx(10.0)
        assert rows[("m", 2)].output_tokens == 120
        ledger.add(T0 + 86_400 - 1, {("m", 1): {"predictions": 2}})  # same day, last bucket
        ledger.add(T0 + 86_400, {("m", 1): {"predictions": 5}})  # the next day
        days = [(r.bucket, r.model, r.version, r.predictions)
                for r in ledger.usage_by_day(T0, T0 + 2 * 86_400)]
        assert days == [(T0, "m", 1, 42), (T0, "m", 2, 0), (T0 + 86_400, "m", 1, 5)]
        assert ledger.prune(T0 + 86_400) == 3
        assert ledger.first_bucket() == T0 + 86_400
    finally:
        for e in engines:
            e.dispose()
