"""One model call for a batch of requests, each request failing alone (ray #42593).

A batcher (Ray's ``@serve.batch`` in a version deployment, :mod:`keelwork.core.batching` in a
gateway) joins the instances of several requests into one model call. When that call raises,
the requests must not all fail with it: :func:`call_members` retries each request on its own,
so the one whose instances make the model raise gets its own error and its neighbours are
answered. It never raises: each member gets a :class:`Answer` or a :class:`Failure`, which is
what a batcher that sets one exception on a whole batch (Ray's) needs to be handed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Answer:
    """The outputs of one member's instances (one each)."""

    outputs: list[Any]


@dataclass(frozen=True, slots=True)
class Failure:
    """What one member's own call raised: the exception's class name and message."""

    error: str
    message: str


Outcome = Answer | Failure


def _failure(exc: BaseException) -> Failure:
    return Failure(type(exc).__name__, str(exc))


def _alone(call: Callable[[list[Any]], Sequence[Any]], member: Sequence[Any]) -> Outcome:
    try:
        out = list(call(list(member)))
    except Exception as exc:  # the model's own failure, this member's alone
        return _failure(exc)
    if len(out) != len(member):
        return Failure("PredictionError", f"The model returned {len(out)} outputs for "
                       f"{len(member)} instances.")
    return Answer(out)


def call_members(call: Callable[[list[Any]], Sequence[Any]],
                 members: Sequence[Sequence[Any]]) -> list[Outcome]:
    """One outcome per member: ``call`` on all members' instances at once, split back by
    member; when that raises (or answers the wrong number of outputs) and more than one member
    shares it, each member is called again on its own.

    Args:
        call: The model's batch call (instances in, one output each out).
        members: Each request's instances.
    """
    if len(members) == 1:
        return [_alone(call, members[0])]
    joined = [instance for member in members for instance in member]
    whole = _alone(call, joined)
    if isinstance(whole, Failure):
        return [_alone(call, member) for member in members]
    outcomes: list[Outcome] = []
    start = 0
    for member in members:
        outcomes.append(Answer(whole.outputs[start:start + len(member)]))
        start += len(member)
    return outcomes


__all__ = ["Answer", "Failure", "Outcome", "call_members"]
