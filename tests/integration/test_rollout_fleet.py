"""A fleet's decider (``keel serve --workers N``: the lease holder) decides a rollout on every
worker's answers, read from the shared prediction log, not on its own live share: answers
another worker logged count, each once, and a shadow challenger's copies count as its answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import Engine

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import (
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.adapters.stores.rollout_answers import interval_answers
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from rollout_project import make_project, open_project, register


def _log(engine: Engine, rows: list[tuple[float, int, str, float]],
         model: str = "scorer") -> None:
    """Write ``(ts, version, status, latency_ms)`` answers as another worker's log writer
    would."""
    records = [record_to_row(PredictionRecord(
        id=new_prediction_id(), ts=ts, model=model, version=version, inputs={"a": 1.0, "b": 1},
        outputs=None if status in ("error", "timeout", "shadow_error") else 2.0,
        latency_ms=ms, status=status, guard="contract" if status == "rejected" else None))
        for ts, version, status, ms in rows]
    ins_meta, ins_payload = insert_statements(engine)
    with engine.begin() as conn:
        conn.execute(ins_meta, [{k: r[k] for k in r if k not in (
            "v", "inputs", "outputs", "request_meta")} for r in records])
        conn.execute(ins_payload, [{"id": r["id"], "inputs": r["inputs"],
                                    "outputs": r["outputs"], "request_meta": r["request_meta"]}
                                   for r in records])


def test_interval_answers_count_each_answer_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        ensure_schema(engine)
        t0 = 1_000_000.0
        statuses = ["ok", "ok", "fallback", "error", "timeout", "rejected", "ok", "ok"]
        _log(engine, [(t0 + i, 2, s, float(10 + i)) for i, s in enumerate(statuses)])
        _log(engine, [(t0 + i, 1, "ok", 1.0) for i in range(8)])  # the other arm
        _log(engine, [(t0 + i, 2, "ok", 1.0) for i in range(3)], model="other")
        _log(engine, [(t0 + 0.5, 2, "shadow", 7.0), (t0 + 1.5, 2, "shadow_error", 9.0)])
        whole = interval_answers(engine, "scorer", 2, t0, t0 + 8)
        assert (whole.requests, whole.errors, whole.violations, whole.guard_hits) == (8, 3, 1, 1)
        assert sorted(whole.latencies_ms) == [float(10 + i) for i in range(8)]
        assert whole.outputs == [2.0] * 5  # answers only: ok and fallback
        # Consecutive half-open ranges split the answers: none counted twice or lost.
        a = interval_answers(engine, "scorer", 2, t0, t0 + 3)
        b = interval_answers(engine, "scorer", 2, t0 + 3, t0 + 8)
        assert (a.requests, b.requests) == (3, 5) and a.errors + b.errors == whole.errors
        # A shadow challenger's copies: answered or failed, never a guard hit.
        shadow = interval_answers(engine, "scorer", 2, t0, t0 + 8, shadow=True)
        assert (shadow.requests, shadow.errors, shadow.guard_hits) == (2, 1, 0)
        assert shadow.outputs == [2.0] and sorted(shadow.latencies_ms) == [7.0, 9.0]
        assert interval_answers(engine, "scorer", 3, t0, t0 + 8).requests == 0
    finally:
        engine.dispose()


def test_the_decider_aborts_on_another_workers_failures(tmp_path: Path) -> None:
    """The process that decides served nothing itself; the challenger's failures another
    worker logged abort the rollout. Without fleet mode the same process sees no answer."""
    service = open_project(make_project(tmp_path, interval="60s"), poll_s=0.05)
    challenger = register(service, "good")
    controller = service.rollout_controller

    async def scenario() -> None:
        await service.start()
        await service.gateway.start()
        try:
            service.rollouts.start("scorer", challenger, service.resolved.spec.rollout,
                                   interval="60s", actor="tester")
            await controller.sync()
            now = time.time()
            engine = service.rollouts.store.engine
            _log(engine, [(now - 3 + i / 100, 1, "ok", 5.0) for i in range(20)])
            _log(engine, [(now - 3 + i / 100, challenger, "error", 5.0) for i in range(20)])
            await controller.analyse("scorer")  # one process's own window: empty
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "progressing", events
            controller.fleet = True
            await controller.analyse("scorer")
            rollout, events = service.rollouts.status("scorer")
            decision = events[-1].decision
            assert decision is not None and "failure 1/2" in decision["reason"], events
            assert decision["answers_from"] == "prediction log (every worker)"
            assert decision["challenger"]["requests"] == 20
            assert decision["challenger"]["errors"] == 20
            assert decision["champion"]["requests"] == 20
            # The next interval reads from where this one ended: new answers only.
            await asyncio.sleep(0.3)
            later = time.time() - 1.1
            _log(engine, [(later - i / 1000, 1, "ok", 5.0) for i in range(10)])
            _log(engine, [(later - i / 1000, challenger, "error", 5.0) for i in range(10)])
            await controller.analyse("scorer")
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "aborted", events
            decision = events[-1].decision
            assert decision is not None
            assert decision["challenger"]["requests"] == 10, decision
            assert decision["champion"]["requests"] == 10, decision
        finally:
            await service.gateway.close()
            await service.close()

    asyncio.run(scenario())
