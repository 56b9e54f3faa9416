"""Which version a rollback returns to: a step back through the champion's history, never a flip.

The rule (docs/rollouts.md): a rollback serves *the champion before the current one in the
alias history, skipping versions that were rolled back from or aborted*. Concretely, the
``champion`` alias's moves give the sequence of champions, oldest first; walking it from the
newest end, the target is the first version that

- is not the current champion, and
- has no *setback* since it last became champion: a rollback away from it, or an aborted
  rollout to it. (A version that was made champion again deliberately after a setback, by a
  promote or ``keel models alias``, is eligible again.)

So after promoting 1 -> 3 a rollback gives 1, and a second rollback finds nothing (3 was rolled
back from): it is refused instead of flipping back to 3. After 1 -> 2 -> 3, rollbacks give 2,
then 1, then nothing. An aborted challenger is never a target, even if it was champion once
before its failed retry. Nothing here does I/O; the operations read the history and the setbacks
from the stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChampionMove:
    """One move of the ``champion`` alias (``None``: unset / removed), at epoch seconds."""

    from_version: int | None
    to_version: int | None
    at: float


@dataclass(frozen=True, slots=True)
class Setback:
    """A version that was rolled back from, or whose rollout was aborted, at epoch seconds."""

    version: int
    at: float
    #: ``rolled_back`` (a rollback away from it) or ``aborted`` (its rollout was aborted).
    kind: str
    why: str


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """The version to return to (None: nothing to roll back to) and the versions skipped."""

    target: int | None
    skipped: tuple[str, ...]


def rollback_target(moves: Sequence[ChampionMove], current: int,
                    setbacks: Sequence[Setback]) -> RollbackPlan:
    """The rollback target of a model whose champion is ``current`` (see the module docstring).

    Args:
        moves: The ``champion`` alias's moves, oldest first.
        current: The version the bare name serves now.
        setbacks: Every rollback away from a version and every aborted rollout's challenger.

    Returns:
        The plan: the target, or None, with why each earlier champion was skipped.
    """
    stints: list[tuple[int, float]] = []  # (version, when it became champion)
    if moves and moves[0].from_version is not None:
        stints.append((moves[0].from_version, float("-inf")))
    stints.extend((m.to_version, m.at) for m in moves if m.to_version is not None)
    became: dict[int, float] = {}
    for version, at in stints:
        became[version] = max(at, became.get(version, float("-inf")))
    worst: dict[int, Setback] = {}
    for s in setbacks:
        if s.version not in worst or s.at > worst[s.version].at:
            worst[s.version] = s
    skipped: list[str] = []
    seen: set[int] = set()
    for version, _at in reversed(stints):
        if version == current or version in seen:
            continue
        seen.add(version)
        setback = worst.get(version)
        if setback is not None and setback.at >= became[version]:
            skipped.append(f"version {version} ({setback.why})")
            continue
        return RollbackPlan(version, tuple(skipped))
    return RollbackPlan(None, tuple(skipped))
