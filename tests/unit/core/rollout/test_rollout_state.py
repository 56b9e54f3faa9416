"""The rollout state machine: allowed transitions, steps, failure counts, stored form."""

from __future__ import annotations

import pytest

from keelwork.core.rollout.state import Rollout, parse_interval
from keelwork.errors import SpecError, TransitionError


def _started() -> Rollout:
    r, _ = Rollout("m", 1, 2, steps=(5, 25, 100), id=7).apply("begin", actor="a")
    return r


def test_canary_advances_through_steps_then_promotes() -> None:
    r = _started()
    weights = [r.weight]
    for _ in range(2):
        r, e = r.apply("advance", actor="c")
        weights.append(r.weight)
        assert e.action == "advance" and e.to_phase == "progressing"
    assert weights == [5, 25, 100]
    r, e = r.apply("advance", actor="c")
    assert r.phase == "promoted" and e.action == "promote" and r.weight == 0


def test_failures_count_on_failed_holds_only_and_reset_on_advance() -> None:
    r = _started()
    r, _ = r.apply("hold", actor="c", decision={"outcome": "no_data"})
    assert r.failures == 0
    r, _ = r.apply("hold", actor="c", decision={"outcome": "fail"})
    assert r.failures == 1
    r, _ = r.apply("advance", actor="c")
    assert r.failures == 0 and r.step == 1


def test_aborted_can_be_retried_from_the_first_step() -> None:
    r = _started()
    r, _ = r.apply("advance", actor="c")
    r, _ = r.apply("hold", actor="c", decision={"outcome": "fail"})
    r, e = r.apply("abort", actor="c", reason="gates")
    assert r.phase == "aborted" and r.weight == 0 and e.reason == "gates"
    r, e = r.apply("retry", actor="op")
    assert r.phase == "progressing" and r.step == 0 and r.failures == 0 and r.weight == 5


@pytest.mark.parametrize("phase,action", [("aborted", "promote"), ("promoted", "abort"),
                                          ("rolled_back", "resume"), ("pending", "advance")])
def test_forbidden_transitions_name_the_phase_and_the_allowed_actions(phase: str,
                                                                       action: str) -> None:
    r = Rollout("m", 1, 2, phase=phase, id=3)  # type: ignore[arg-type]
    with pytest.raises(TransitionError, match=f"is {phase}: it cannot {action}"):
        r.apply(action, actor="x")


def test_shadow_never_gives_the_challenger_traffic_and_ab_keeps_its_split() -> None:
    shadow, _ = Rollout("m", 1, 2, strategy="shadow").apply("begin", actor="a")
    ab, _ = Rollout("m", 1, 2, strategy="ab", steps=(50, 100)).apply("begin", actor="a")
    ab2, _ = ab.apply("advance", actor="a")
    assert shadow.weight == 0 and ab.weight == 50 and ab2.weight == 50


def test_stored_form_round_trips_with_kind_and_version() -> None:
    r = _started()
    d = r.as_dict()
    assert d["kind"] == "rollout" and d["version"] == 1
    assert Rollout.from_dict(d) == r
    with pytest.raises(SpecError, match="kind 'rollout'"):
        Rollout.from_dict({**d, "kind": "flag"})


@pytest.mark.parametrize("text,seconds", [("5m", 300.0), ("0.2s", 0.2), ("250ms", 0.25),
                                          ("2h", 7200.0), ("1d", 86400.0)])
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "0s", "-1s", "1w", "fast"])
def test_parse_interval_rejects_bad_text(text: str) -> None:
    with pytest.raises(SpecError, match="positive duration"):
        parse_interval(text)


def test_the_failure_that_aborts_is_counted_so_status_and_event_agree() -> None:
    """Issue 11.5: the abort's event said "failure 2/2" while the status showed 1/2."""
    from dataclasses import replace

    from keelwork.core.rollout.analysis import ArmStats, decide

    r = replace(_started(), gates={"max_error_rate": 0.01}, min_requests=1)
    bad = ArmStats(requests=10, errors=5)
    good = ArmStats(requests=10)
    for _ in range(2):
        d = decide(r, good, bad)
        r, event = r.apply(d.action, actor="c", reason=d.reason, decision=d.as_dict())
    assert (r.phase, event.action) == ("aborted", "abort")
    assert f"failure {r.failures}/{r.max_failures}" in event.reason
    assert r.failures == r.max_failures == 2


def test_an_abort_for_failed_loads_records_their_count() -> None:
    r = _started()
    r, _ = r.apply("abort", actor="c", decision={"outcome": "load_failed", "failures": 2})
    assert r.failures == 2
    r2, _ = _started().apply("abort", actor="op")  # a hand abort counts nothing
    assert r2.failures == 0


def test_a_retry_runs_against_the_champion_it_is_given() -> None:
    """a retry kept the champion stored at its start, though the alias had moved."""
    aborted, _ = _started().apply("abort", actor="op")
    retried, _ = aborted.apply("retry", actor="op", champion=4)
    assert (retried.phase, retried.champion, retried.challenger) == ("progressing", 4, 2)
    assert aborted.apply("retry", actor="op")[0].champion == 1  # not given: unchanged
    assert _started().apply("pause", actor="op", champion=4)[0].champion == 1  # retry only
    with pytest.raises(TransitionError, match="version 2, is the champion now"):
        aborted.apply("retry", actor="op", champion=2)
