"""Shadow rollouts never change answers; A/B rollouts split stickily and name a winner."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from keelwork.errors import KeelworkError
from keelwork.service.assembly import Service
from keelwork.service.gateway.context import RequestContext
from rollout_project import load, make_project, open_project, register

INTERVAL = 0.2


async def _serve(service: Service) -> None:
    await service.start()
    await service.gateway.start()


async def _stop(service: Service) -> None:
    await service.gateway.close()
    await service.close()


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_shadow_answers_come_from_the_champion_and_the_copies_are_logged(
        tmp_path: Path) -> None:
    service = open_project(make_project(tmp_path), poll_s=0.05)
    drifting = register(service, "drifts")

    async def scenario() -> list[tuple[float, list[float]]]:
        await _serve(service)
        answers: list[tuple[float, list[float]]] = []
        try:
            service.rollouts.start("scorer", drifting, service.resolved.spec.rollout,
                                   strategy="shadow", interval="1h", actor="t")
            await asyncio.sleep(0.2)
            for i in range(60):
                r = await service.gateway.predict("scorer", None, [{"a": float(i), "b": 1}],
                                                  RequestContext())
                assert r.version == 1
                answers.append((float(i) + 1.0, r.predictions))
            await asyncio.sleep(0.3)  # let the copies finish
        finally:
            await _stop(service)
        return answers

    answers = asyncio.run(scenario())
    assert all(got == [want] for want, got in answers)  # never the challenger's answer
    db = tmp_path / "keel.db"
    shadow = _rows(db, "select version, status, guard from predictions where status like "
                       "'shadow%'")
    assert len(shadow) == 60 and set(shadow) == {(drifting, "shadow", "shadow")}
    served = _rows(db, "select distinct version, status from predictions where status = 'ok'")
    assert served == [(1, "ok")]


def test_failing_shadow_never_fails_a_request_and_is_aborted(tmp_path: Path) -> None:
    service = open_project(make_project(tmp_path), poll_s=0.05)
    failing = register(service, "errors")

    async def scenario() -> None:
        await _serve(service)
        try:
            service.rollouts.start("scorer", failing, service.resolved.spec.rollout,
                                   strategy="shadow", interval=f"{INTERVAL}s", actor="t")
            # Traffic until the rollout ends (two failing intervals), with a generous deadline:
            # on a machine under load an interval's analysis can land after a fixed window.
            for _ in range(30):
                result = await load(service.gateway, 2 * INTERVAL, workers=8)
                assert result["failures"] == [] and set(result["by_version"]) == {1}
                if service.rollouts.status("scorer")[0].phase != "progressing":
                    break
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "aborted", [(e.action, e.reason) for e in events]
            gates = {g["gate"]: g for g in events[-1].decision["gates"]}
            assert gates["error_rate"]["status"] == "fail"
            assert gates["error_rate"]["challenger"] == 1.0
        finally:
            await _stop(service)

    asyncio.run(scenario())


def test_ab_is_sticky_by_key_and_the_sequential_test_names_the_better_arm(
        tmp_path: Path) -> None:
    """Champion fails 10 % of calls, challenger 30 %: the test must pick the champion with
    alpha 0.05 and pause for a human; each user keeps one arm throughout."""
    # Half-second intervals: each arm gets its min_requests in most intervals even on a busy
    # machine (an interval where one arm falls short is inconclusive: the A/B test holds).
    path = make_project(tmp_path, interval="0.5s", min_requests=50)
    text = path.read_text().replace("max_error_rate: 0.05", "max_error_rate: 0.9")
    path.write_text(text)
    service = open_project(path, poll_s=0.05)
    service.registry.set_alias("scorer", register(service, "flaky_10"), "champion")
    worse = register(service, "flaky_30")

    async def scenario() -> None:
        await _serve(service)
        try:
            service.rollouts.start("scorer", worse, service.resolved.spec.rollout,
                                   strategy="ab", interval="0.5s", actor="t")
            await asyncio.sleep(0.2)
            arms: dict[str, set[int]] = {}
            for _ in range(40):
                await load(service.gateway, 0.1, workers=16)
                for u in range(30):
                    user = f"user-{u}"
                    try:
                        r = await service.gateway.predict(
                            "scorer", None, [{"a": 1.0, "b": u}],
                            RequestContext(sticky_key=user))
                        arms.setdefault(user, set()).add(r.version)
                    except KeelworkError:  # the flaky arms fail on purpose
                        pass
                if service.rollouts.status("scorer")[0].phase != "progressing":
                    break
            assert all(len(v) == 1 for v in arms.values()), arms  # sticky
            assert len({v for s in arms.values() for v in s}) == 2  # both arms used
            rollout, events = service.rollouts.status("scorer")
            assert rollout.phase == "paused", [(e.action, e.reason) for e in events]
            ab = events[-1].decision["ab_test"]
            assert ab["verdict"] == "a" and ab["p_value"] <= 0.05 and ab["alpha"] == 0.05
            assert "the champion wins" in events[-1].reason
        finally:
            await _stop(service)

    asyncio.run(scenario())
