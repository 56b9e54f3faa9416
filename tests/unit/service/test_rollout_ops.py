"""Rollout operations refuse without side effects, and a retry is judged like a start: its
challenger's declared tests gate it, and it runs against the champion now."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from keelwork.errors import SpecError, TransitionError
from keelwork.service.assembly import Service
from rollout_project import make_project, open_project, register


def _with_tests(spec: Path) -> Path:
    """keel.yaml declaring a tests file for ``scorer`` (never run: every version is gated)."""
    marker = '    artifact: "faulty_models:good"\n'
    text = spec.read_text()
    assert marker in text
    spec.write_text(text.replace(marker, marker + "    tests: scorer-tests.yaml\n", 1))
    (spec.parent / "scorer-tests.yaml").write_text(
        "kind: keel-tests\nversion: 1\ntests:\n  - name: one\n    kind: minimum\n"
        "    cases: [{input: {a: 1.0, b: 1}, min_score: 0}]\n")
    return spec


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    opened = open_project(make_project(tmp_path))
    try:
        yield opened
    finally:
        asyncio.run(opened.close())


def _champion(service: Service) -> int:
    return service.registry.resolve("scorer@champion").version


def _history(service: Service) -> list[tuple[int | None, int | None]]:
    return [(c.from_version, c.to_version) for c in service.registry.alias_history("scorer")]


def test_a_refused_start_moves_no_alias(service: Service) -> None:
    """the champion alias was pinned to --from before the interval was parsed and before
    the check for an active rollout, so a refused start had moved production traffic."""
    v2, v3 = register(service, "good_twin"), register(service, "good_twin")
    service.registry.set_alias("scorer", 1, "champion")
    section = service.resolved.spec.rollout
    before = _history(service)
    with pytest.raises(SpecError, match="positive duration"):
        service.rollouts.start("scorer", v2, section, from_version=v3, interval="soon")
    assert _champion(service) == 1 and _history(service) == before
    with pytest.raises(SpecError, match="canary, shadow or ab"):
        service.rollouts.start("scorer", v2, section, from_version=v3, strategy="blue-green")
    assert _champion(service) == 1 and _history(service) == before

    service.rollouts.start("scorer", v2, section, interval="1h")
    before = _history(service)
    with pytest.raises(TransitionError, match="already has an active rollout"):
        service.rollouts.start("scorer", v2, section, from_version=v3)
    assert _champion(service) == 1 and _history(service) == before
    # no refused start is in the audit log as an alias move either
    audit = service.registry.audit
    moves = audit.query(action="alias.set", target="scorer@champion")  # type: ignore[union-attr]
    assert [e.details["to_version"] for e in moves] == [1]


def test_a_start_pins_the_champion_with_the_rollout(service: Service) -> None:
    v2, v3 = register(service, "good_twin"), register(service, "good_twin")
    started = service.rollouts.start("scorer", v2, service.resolved.spec.rollout,
                                     from_version=v3, interval="1h")
    assert started.champion == v3 and _champion(service) == v3


def test_a_retry_runs_against_the_champion_now(service: Service) -> None:
    """after an abort and a hand move of the champion alias, the retry kept the stored
    champion: bare-name traffic went to the old champion and the challenger, never to the
    champion the operator chose."""
    v2, v3 = register(service, "good_twin"), register(service, "good_twin")
    service.registry.set_alias("scorer", 1, "champion")
    ops = service.rollouts
    ops.start("scorer", v2, service.resolved.spec.rollout, interval="1h")
    ops.act("scorer", "abort", actor="op")
    service.registry.set_alias("scorer", v3, "champion", reason="incident fix")
    retried = ops.act("scorer", "retry", actor="op", reason="try again")
    assert (retried.phase, retried.champion, retried.challenger) == ("progressing", v3, v2)
    assert _champion(service) == v3
    event = ops.store.events(retried.id)[-1]
    assert event.action == "retry"
    assert f"champion now version {v3} (the rollout had 1)" in event.reason
    # the champion moved to the challenger itself: nothing to retry, nothing changes
    ops.act("scorer", "abort", actor="op")
    service.registry.set_alias("scorer", v2, "champion")
    with pytest.raises(TransitionError, match=f"version {v2}, is the champion now"):
        ops.act("scorer", "retry", actor="op")
    assert ops.status("scorer")[0].phase == "aborted" and _champion(service) == v2


def test_a_retry_is_gated_on_declared_tests_like_a_start(tmp_path: Path) -> None:
    """a retry skipped the tests gate, and the controller then promoted the version."""
    service = open_project(_with_tests(make_project(tmp_path)))
    try:
        v2 = register(service, "good_twin")
        ops, section = service.rollouts, service.resolved.spec.rollout
        with pytest.raises(TransitionError, match=f"Cannot roll out version {v2}"):
            ops.start("scorer", v2, section, interval="1h")
        ops.start("scorer", v2, section, interval="1h", skip_tests=True)
        ops.act("scorer", "abort", actor="op")
        with pytest.raises(TransitionError, match=rf"Cannot retry the rollout of version {v2}"
                                                  r".*were not run on it.*--skip-tests"):
            ops.act("scorer", "retry", actor="op")
        assert ops.status("scorer")[0].phase == "aborted"
        retried = ops.act("scorer", "retry", actor="op", reason="hotfix", skip_tests=True)
        assert retried.phase == "progressing"
        reason = ops.store.events(retried.id)[-1].reason
        assert reason.startswith("hotfix; tests skipped (--skip-tests): ")
        audit = service.registry.audit
        retry = [e for e in audit.query(target="scorer")  # type: ignore[union-attr]
                 if e.action == "rollout.retry"]
        assert len(retry) == 1 and "tests skipped" in retry[0].details["reason"]
        # a retry the phase forbids is refused for its phase, not for the tests
        with pytest.raises(TransitionError, match="is progressing: it cannot retry"):
            ops.act("scorer", "retry", actor="op")
    finally:
        asyncio.run(service.close())
