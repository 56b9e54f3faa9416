"""One model call per batch of requests, each request failing alone (ray #42593)."""

from __future__ import annotations

from typing import Any

from keelwork.core.batch_members import Answer, Failure, call_members


class _Model:
    """Doubles each instance; raises for a call holding a 13; records each call's size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, instances: list[Any]) -> list[Any]:
        self.calls.append(len(instances))
        if 13 in instances:
            raise ValueError("13 is poison")
        return [2 * i for i in instances]


def test_one_call_split_back_by_member() -> None:
    model = _Model()
    out = call_members(model, [[1], [2, 3], [4]])
    assert out == [Answer([2]), Answer([4, 6]), Answer([8])]
    assert model.calls == [4]


def test_a_poisoned_member_fails_alone_and_its_neighbours_are_answered() -> None:
    model = _Model()
    members = [[i] for i in range(8)] + [[13], [1, 2]]
    out = call_members(model, members)
    assert out[:8] == [Answer([2 * i]) for i in range(8)]
    assert out[8] == Failure("ValueError", "13 is poison")
    assert out[9] == Answer([2, 4])
    assert model.calls == [11] + [1] * 9 + [2]  # the batch, then each member alone


def test_a_lone_member_is_called_once() -> None:
    model = _Model()
    assert call_members(model, [[13]]) == [Failure("ValueError", "13 is poison")]
    assert model.calls == [1]


def test_the_wrong_number_of_outputs_fails_the_batch_and_is_retried() -> None:
    def short(instances: list[Any]) -> list[Any]:
        return [0] * (len(instances) - 1 if 9 in instances else len(instances))

    out = call_members(short, [[1], [9], [2]])
    assert out[0] == Answer([0]) and out[2] == Answer([0])
    assert isinstance(out[1], Failure) and "0 outputs for 1 instances" in out[1].message
