"""benchmarks/serving_profile.py: py-spy's raw samples into CPU buckets (issue 19's profile)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_modules import benchmark_module


@pytest.fixture(scope="module")
def profile() -> Iterator[ModuleType]:
    with benchmark_module("serving_profile") as module:
        yield module


def test_innermost_frame_picks_the_bucket(profile: ModuleType) -> None:
    b = profile.bucket_of
    assert b("RecordValidator._valid (keelwork/core/contracts/record.py:184)") == \
        "contract check (core/contracts)"
    assert b("DefaultDialect.do_commit (sqlalchemy/engine/default.py:954)") == \
        "prediction log (SQLAlchemy, sqlite, writer)"
    assert b("HttpToolsProtocol.data_received (uvicorn/protocols/http/httptools_impl.py:173)") \
        == "uvicorn HTTP protocol (httptools)"
    assert b("ThreadPoolExecutor.submit (concurrent/futures/thread.py:175)") == \
        "thread hand-offs (executor, condition)"
    assert b("mystery (somewhere/else.py:1)") == "other"


def test_blocking_waits_are_counted_apart(profile: ModuleType) -> None:
    assert profile.bucket_of("_worker (concurrent/futures/thread.py:81)") == "waiting"
    assert profile.bucket_of("Condition.wait (threading.py:327)") == "waiting"
    assert profile.bucket_of("Condition.notify (threading.py:382)") != "waiting"


def test_summarise_sums_samples_per_bucket_and_frame(profile: ModuleType,
                                                      tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 7\n"
        "main (x.py:1);v1_predict (keelwork/interfaces/http/predict_routes.py:66) 3\n"
        "main (x.py:1);RecordValidator._valid (keelwork/core/contracts/record.py:184) 2\n"
        "main (x.py:1);RecordValidator._valid (keelwork/core/contracts/record.py:184) 4\n"
        "garbage line without a count\n")
    buckets, leaves, total = profile.summarise(raw)
    assert total == 16
    assert buckets == {"waiting": 7, "keel HTTP layer (parse, guards, render)": 3,
                       "contract check (core/contracts)": 6}
    assert leaves["RecordValidator._valid (keelwork/core/contracts/record.py:184)"] == 6
