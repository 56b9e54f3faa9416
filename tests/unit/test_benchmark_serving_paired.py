"""benchmarks/serving.py: this tree against the baseline tree, compared round by round."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from benchmark_modules import benchmark_module


@pytest.fixture(scope="module")
def serving() -> Iterator[ModuleType]:
    with benchmark_module("serving") as module:
        yield module


def test_paired_ratios_cancel_a_slow_round(serving: ModuleType, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    """A round in which the machine ran 1.6x slower for both servers leaves the per-round
    ratios alone: the median is the ratio each round showed, not what the medians of the two
    servers' own numbers would say."""
    def result(name: str, rps: float, cpu_us: float) -> object:
        return serving.Result(name, 64, rps, 1.0, 2.0, 3.0, 0, int(rps), cpu_us)

    runs = {("keel-granian", 64): [result("keel-granian", 9000, 100),
                                   result("keel-granian", 5625, 160),
                                   result("keel-granian", 9000, 100)],
            ("keel-base-granian", 64): [result("keel-base-granian", 8000, 110),
                                        result("keel-base-granian", 5000, 176),
                                        result("keel-base-granian", 8000, 110)]}
    serving.print_paired(runs, [64])
    out = capsys.readouterr().out
    assert "req/s x1.125 (1.12-1.12)" in out
    assert "CPU per request x0.909 (0.91-0.91) over 3 rounds" in out


def test_nothing_is_paired_without_both_trees(serving: ModuleType,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    runs = {("keel-granian", 64): [serving.Result("keel-granian", 64, 9000.0, 1.0, 2.0, 3.0, 0,
                                                  9000, 100.0)]}
    serving.print_paired(runs, [64])
    assert capsys.readouterr().out == ""
