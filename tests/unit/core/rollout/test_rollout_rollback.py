"""Which version a rollback returns to: a step back through the champion's history."""

from __future__ import annotations

from keelwork.core.rollout.rollback import ChampionMove, Setback, rollback_target


def _moves(*pairs: tuple[int | None, int | None]) -> list[ChampionMove]:
    return [ChampionMove(a, b, float(t)) for t, (a, b) in enumerate(pairs, start=1)]


def test_after_a_promote_rollback_returns_then_refuses_instead_of_flipping() -> None:
    moves = _moves((None, 1), (1, 3))
    assert rollback_target(moves, 3, []).target == 1
    # The rollback 3 -> 1 at t=3 marks 3 as rolled back from.
    moves = _moves((None, 1), (1, 3), (3, 1))
    plan = rollback_target(moves, 1, [Setback(3, 3.0, "rolled_back", "rolled back from")])
    assert plan.target is None
    assert plan.skipped == ("version 3 (rolled back from)",)


def test_rollbacks_walk_back_one_champion_at_a_time() -> None:
    moves = _moves((None, 1), (1, 2), (2, 3))
    assert rollback_target(moves, 3, []).target == 2
    moves = _moves((None, 1), (1, 2), (2, 3), (3, 2))
    backs = [Setback(3, 4.0, "rolled_back", "rb")]
    assert rollback_target(moves, 2, backs).target == 1
    moves = _moves((None, 1), (1, 2), (2, 3), (3, 2), (2, 1))
    backs.append(Setback(2, 5.0, "rolled_back", "rb"))
    assert rollback_target(moves, 1, backs).target is None


def test_an_aborted_challenger_is_never_a_target() -> None:
    # 3 was champion once, then 1 again; a retry of 3 was aborted: rolling back from 1
    # must not bring 3 back.
    moves = _moves((None, 1), (1, 3), (3, 1))
    plan = rollback_target(moves, 1, [Setback(3, 10.0, "aborted", "its rollout 2 was aborted")])
    assert plan.target is None


def test_a_version_made_champion_again_after_its_setback_is_eligible() -> None:
    # 1 -> 3, rollback to 1 (3 marked at t=3), 3 promoted again at t=4, then 4 at t=5.
    moves = _moves((None, 1), (1, 3), (3, 1), (1, 3), (3, 4))
    backs = [Setback(3, 3.0, "rolled_back", "rb")]
    assert rollback_target(moves, 4, backs).target == 3


def test_nothing_to_roll_back_to_without_history() -> None:
    assert rollback_target([], 1, []).target is None
    assert rollback_target(_moves((None, 1)), 1, []).target is None
    # An alias removed and set again: the removal is not a champion.
    assert rollback_target(_moves((None, 1), (1, None), (None, 2)), 2, []).target == 1
