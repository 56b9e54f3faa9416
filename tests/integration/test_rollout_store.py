"""The rollout store on SQLite and PostgreSQL: transitions with their decisions, optimistic
concurrency, audit entries, and a rollout that survives a server restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keelwork.core.rollout.state import Rollout
from keelwork.errors import TransitionError
from rollout_project import load, make_project, open_project, register


def test_transitions_are_stored_with_decisions_and_audited(tmp_path: Path,
                                                          store_url: str) -> None:
    service = open_project(make_project(tmp_path, store_url))
    try:
        v2 = register(service, "good_twin")
        ops = service.rollouts
        r = ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        assert (r.phase, r.champion, r.challenger, r.weight) == ("progressing", 1, v2, 50)
        with pytest.raises(TransitionError, match="already has an active rollout"):
            ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        decision = {"outcome": "fail", "gates": [{"gate": "error_rate", "challenger": 0.3,
                                                  "threshold": 0.05, "status": "fail"}]}
        held = ops.act("scorer", "hold", actor="ctl", reason="gates", decision=decision)
        assert held.failures == 1
        with pytest.raises(TransitionError, match="changed since it was read"):
            ops.act("scorer", "advance", actor="ctl", expect_revision=r.revision)
        paused = ops.act("scorer", "pause", actor="bob")
        assert paused.phase == "paused"
        with pytest.raises(TransitionError, match="is paused: it cannot advance"):
            ops.act("scorer", "advance", actor="ctl")
        ops.act("scorer", "abort", actor="bob", reason="enough")
        rollout, events = ops.status("scorer")
        assert rollout.phase == "aborted" and rollout.weight == 0
        assert [e.action for e in events] == ["begin", "hold", "pause", "abort"]
        assert events[1].decision == decision and events[1].actor == "ctl"
        # Every transition is in the audit log, with the event as details.
        audit = service.registry.audit
        entries = audit.query(target="scorer")  # type: ignore[union-attr]
        actions = [e.action for e in entries if e.action.startswith("rollout.")]
        assert actions == ["rollout.begin", "rollout.hold", "rollout.pause", "rollout.abort"]
        # An aborted rollout can be retried: a new rollout of the same target.
        again = ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        assert again.id != r.id and again.phase == "progressing"
        assert ops.store.events(again.id)[0].reason == f"retry of rollout {r.id}"
        assert ops.store.get(r.id).phase == "aborted"
        assert [x.id for x in ops.store.active()] == [again.id]
    finally:
        asyncio.run(service.close())


def test_rollout_state_survives_a_restart(tmp_path: Path, store_url: str) -> None:
    path = make_project(tmp_path, store_url)
    first = open_project(path)
    v2 = register(first, "good_twin")

    async def serve_once(advance: bool) -> dict[int, int]:
        service = open_project(path)
        await service.start()
        await service.gateway.start()
        try:
            if advance:
                r = service.rollouts.start("scorer", v2, service.resolved.spec.rollout,
                                           interval="1h", actor="t")
                service.rollouts.act("scorer", "advance", actor="t",
                                     expect_revision=r.revision)
            # Until this server routes the stored rollout's step (a poll and the challenger's
            # load; longer on a machine under CPU load): measuring before would see the old
            # route, which is not what this test is about.
            deadline = asyncio.get_running_loop().time() + 10
            while (route := service.gateway.rollout_route("scorer")) is None or \
                    route.weight != 100:
                assert asyncio.get_running_loop().time() < deadline, "never routed"
                await asyncio.sleep(0.02)
            result = await load(service.gateway, 0.5)
            counts: dict[int, int] = result["by_version"]
            return counts
        finally:
            await service.gateway.close()
            await service.close()

    try:
        before = asyncio.run(serve_once(advance=True))
        after = asyncio.run(serve_once(advance=False))  # a new process: state from the store
    finally:
        asyncio.run(first.close())
    # Step 2 of [50, 100]: all traffic on the challenger, before and after the restart.
    assert set(before) == {v2} and set(after) == {v2}
    reopened = open_project(path)
    try:
        r = reopened.rollouts.status("scorer")[0]
        assert (r.phase, r.step, r.weight) == ("progressing", 1, 100)
        assert Rollout.from_dict(r.as_dict()) == r
    finally:
        asyncio.run(reopened.close())


def test_promote_moves_the_alias_and_the_phase_in_one_transaction(
        tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11.14: the phase "promoted" was committed before the alias moved, so a reader in
    between saw "promoted" beside the old champion. An alias move that fails must leave the
    rollout unpromoted; one that succeeds is seen together with the phase."""
    from keelwork.adapters.stores import registry_store
    from keelwork.errors import StoreError

    service = open_project(make_project(tmp_path, store_url))
    try:
        v2 = register(service, "good_twin")
        ops = service.rollouts
        ops.start("scorer", v2, service.resolved.spec.rollout, actor="alice")
        real = registry_store.move_alias

        def failing(*args: object, **kwargs: object) -> None:
            raise StoreError("the alias move failed (injected)")

        monkeypatch.setattr(registry_store, "move_alias", failing)
        with pytest.raises(StoreError, match="injected"):
            ops.act("scorer", "promote", actor="alice")
        assert ops.status("scorer")[0].phase == "progressing"
        assert service.registry.resolve("scorer").version == 1
        monkeypatch.setattr(registry_store, "move_alias", real)
        promoted = ops.act("scorer", "promote", actor="alice")
        assert promoted.phase == "promoted"
        assert service.registry.resolve("scorer").version == v2
        assert [e.action for e in ops.status("scorer")[1]] == ["begin", "promote"]
    finally:
        asyncio.run(service.close())


def test_rollback_steps_back_and_never_flips(tmp_path: Path, store_url: str) -> None:
    """Issue 11.2: promote 1 -> 3, rollback gives 1, a second rollback gave 3 again; after an
    aborted test of 3 a rollback promoted it. Now: back one champion at a time, skipping
    versions rolled back from or aborted, and a clear refusal when nothing is left."""
    service = open_project(make_project(tmp_path, store_url))
    section = service.resolved.spec.rollout
    try:
        v2 = register(service, "good_twin")
        v3 = register(service, "good_twin")
        ops = service.rollouts
        resolve = service.registry.resolve
        # promote 1 -> 3, rollback -> 1, rollback -> refused (3 was rolled back from).
        ops.start("scorer", v3, section, from_version=1, actor="a")
        ops.act("scorer", "promote", actor="a")
        assert resolve("scorer").version == v3
        assert ops.rollback("scorer", actor="a") == 1
        assert resolve("scorer").version == 1
        assert ops.status("scorer")[0].phase == "rolled_back"
        with pytest.raises(TransitionError, match=r"nothing to roll back to.*version 3"):
            ops.rollback("scorer", actor="a")
        assert resolve("scorer").version == 1  # refused: nothing moved
        # A shadow test of 3 again, aborted: rollback still refuses (never the challenger).
        ops.start("scorer", v3, section, strategy="shadow", actor="a")
        assert ops.rollback("scorer", actor="a") == 1  # an active rollout: abort it
        assert ops.status("scorer")[0].phase == "aborted"
        with pytest.raises(TransitionError, match="nothing to roll back to"):
            ops.rollback("scorer", actor="a")
        # 1 -> 2 -> 3 (3 made champion again by a promote after its setback): back to 2, 1.
        ops.start("scorer", v2, section, actor="a")
        ops.act("scorer", "promote", actor="a")
        ops.start("scorer", v3, section, actor="a")
        ops.act("scorer", "promote", actor="a", force=True)
        assert resolve("scorer").version == v3
        assert ops.rollback("scorer", actor="a") == v2
        assert ops.rollback("scorer", actor="a") == 1
        with pytest.raises(TransitionError, match="nothing to roll back to"):
            ops.rollback("scorer", actor="a")
        # A champion set by hand (keel models alias) is rolled back from like any other.
        service.registry.set_alias("scorer", v2, "champion", actor="a")
        assert ops.rollback("scorer", actor="a") == 1
        with pytest.raises(TransitionError, match="nothing to roll back to"):
            ops.rollback("scorer", actor="a")
        champions = [c.to_version for c in service.registry.alias_history("scorer")
                     if c.alias == "champion"]
        assert champions == [1, v3, 1, v2, v3, v2, 1, v2, 1]
    finally:
        asyncio.run(service.close())


def test_labels_reach_the_shadow_copies_of_their_request(tmp_path: Path,
                                                         store_url: str) -> None:
    """Issue 11.4: a label is sent for the id the caller got (the champion's answer); the
    shadow copy of that request must be judged by it too."""
    from keelwork.adapters.stores.label_store import LabelStore
    from keelwork.adapters.stores.rollout_store import live_accuracy
    from keelwork.service.gateway.context import RequestContext

    service = open_project(make_project(tmp_path, store_url), poll_s=0.05)
    drifting = register(service, "drifts")
    labels = LabelStore(service.registry.engine)
    labels.ensure_schema()

    async def scenario() -> float:
        await service.start()
        await service.gateway.start()
        try:
            r = service.rollouts.start("scorer", drifting, service.resolved.spec.rollout,
                                       strategy="shadow", interval="1h", actor="t")
            await asyncio.sleep(0.3)
            for i in range(20):
                got = await service.gateway.predict("scorer", None,
                                                    [{"a": float(i), "b": 1}], RequestContext())
                assert got.version == 1
                await asyncio.to_thread(labels.submit, [
                    {"prediction_id": got.prediction_ids[0], "label": got.predictions[0]}])
            await asyncio.sleep(0.5)  # the copies finish (closing flushes the log)
            return r.created_at - 1
        finally:
            await service.gateway.close()
            await service.close()

    since = asyncio.run(scenario())
    engine = service.registry.engine
    try:
        found = live_accuracy(engine, "scorer", (1, drifting), since)
    finally:
        engine.dispose()
    assert found[1] == (20, 20)  # the champion answered and was labelled right
    assert found[drifting] == (20, 0)  # its shadow copies: same labels, wrong answers


def test_the_logged_baseline_counts_the_champions_errors(store_url: str) -> None:
    """The champion's side from the log (a 100 % step) left its 5xx and timeouts out, so its
    error rate read 0 and any challenger error looked worse than the champion."""
    import time

    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.prediction_store import (
        ensure_schema,
        insert_statements,
        record_to_row,
    )
    from keelwork.adapters.stores.rollout_answers import recent_answers
    from keelwork.core.predictions import PredictionRecord, new_prediction_id

    engine = make_engine(store_url)
    try:
        ensure_schema(engine)
        ins_meta, ins_payload = insert_statements(engine)
        now = time.time()
        statuses = ["ok"] * 6 + ["error", "timeout", "rejected", "fallback"]
        rows = [record_to_row(PredictionRecord(
            id=new_prediction_id(), ts=now - 10 + i, model="scorer", version=1,
            inputs={"a": i}, outputs=None if s in ("error", "timeout") else i % 2,
            latency_ms=float(i), status=s)) for i, s in enumerate(statuses)]
        with engine.begin() as conn:
            conn.execute(ins_meta, [{k: r[k] for k in r if k not in (
                "v", "inputs", "outputs", "request_meta")} for r in rows])
            conn.execute(ins_payload, [{"id": r["id"], "inputs": r["inputs"],
                                        "outputs": r["outputs"],
                                        "request_meta": r["request_meta"]} for r in rows])
        stats = recent_answers(engine, "scorer", 1, now + 1)
        assert (stats.requests, stats.errors, stats.violations) == (10, 3, 1)
        assert len(stats.outputs) == 7  # answers only: ok and fallback
    finally:
        engine.dispose()


def test_two_starts_at_the_same_moment_leave_one_active_rollout(tmp_path: Path,
                                                                 store_url: str) -> None:
    """the check for an active rollout was a plain read before the transaction's first
    write, so two starts of one model at the same moment (two operators, two CI jobs) both
    passed it: two active rollouts, the older one out of reach of abort."""
    import threading

    from keelwork.service.rollout.operations import open_rollout_ops

    service = open_project(make_project(tmp_path, store_url))
    v2, v3 = register(service, "good_twin"), register(service, "good_twin")
    section = service.resolved.spec.rollout
    asyncio.run(service.close())
    racers = [open_rollout_ops(tmp_path, store_url) for _ in range(2)]
    try:
        for trial in range(12):
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def run(i: int, barrier: threading.Barrier = barrier,
                    outcomes: list[str] = outcomes) -> None:
                barrier.wait()
                try:
                    racers[i].start("scorer", (v2, v3)[i], section, actor=f"op{i}",
                                    interval="1h", verify=False)
                    outcomes.append("started")
                except TransitionError as exc:
                    assert "already has an active rollout" in exc.message
                    outcomes.append("refused")

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            active = racers[0].store.active()
            assert sorted(outcomes) == ["refused", "started"], (trial, outcomes)
            assert len(active) == 1, (trial, [(r.id, r.challenger) for r in active])
            racers[0].act("scorer", "abort", actor="cleanup")
    finally:
        for ops in racers:
            ops.close()
