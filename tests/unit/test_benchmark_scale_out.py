"""benchmarks/scale_out.py: the compute-bound mode's environment, checks and arithmetic."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_modules import benchmark_module


@pytest.fixture(scope="module")
def scale_out() -> Iterator[ModuleType]:
    with benchmark_module("scale_out") as module:
        yield module


def test_heavy_servers_get_one_thread(scale_out: ModuleType) -> None:
    assert scale_out.server_env(False) == {}
    assert scale_out.server_env(True) == scale_out.ONE_THREAD
    assert scale_out.ONE_THREAD["OMP_NUM_THREADS"] == "1"


def test_every_one_replica_server_has_its_two_replica_twin(scale_out: ModuleType) -> None:
    for one, two in scale_out.TWINS.items():
        assert one in scale_out.SERVERS and two in scale_out.SERVERS


def test_the_environment_check_reads_this_process(scale_out: ModuleType) -> None:
    pinned, seen, others = scale_out.tree_env_pinned(os.getpid())
    assert seen >= 1 and pinned + len(others) == seen
    if not all(os.environ.get(k) == v for k, v in scale_out.ONE_THREAD.items()):
        assert Path(f"/proc/{os.getpid()}/comm").read_text().strip() in others


def test_the_summary_splits_cpu_into_idle_model_and_own(
        scale_out: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    result = scale_out.Result
    results = [result("keel-1", 8, 40.0, 1, 1, 1, 0, 320, 25_000.0),
               result("keel-ray-1", 8, 20.0, 1, 1, 1, 0, 160, 60_000.0),
               result("keel-ray-2", 8, 36.0, 1, 1, 1, 0, 288, 50_000.0)]
    idle = {"keel-1": 0.02, "keel-ray-1": 0.2, "keel-ray-2": 0.18}
    model = {("keel-1", 8): 22.0, ("keel-ray-1", 8): 30.0, ("keel-ray-2", 8): 25.0}
    scale_out.print_heavy(results, 21.0, idle, model)
    out = capsys.readouterr().out
    # keel-1: 25 ms in all, idle 0.02 cores / 40 req/s = 0.5 ms, model 22: own 2.5 ms
    assert "keel-1                  8   25.00    0.50   22.00    2.50         +0.00" in out
    # keel-ray-1: 60 - 10 (0.2 / 20) - 30 = 20 ms own, 17.5 more than one process
    assert "keel-ray-1              8   60.00   10.00   30.00   20.00        +17.50" in out
    assert "keel-ray-2 / keel-ray-1 c=8: 1.80x" in out


def test_a_ray_process_keeps_its_role_while_it_runs_a_method(scale_out: ModuleType) -> None:
    role = scale_out.role_of
    assert role("ray::ServeReplica:serving-bench:ingress.handle_request_with_rejection") == \
        "ray::ServeReplica:serving-bench:ingress"
    assert role("ray::ServeReplica:serving-bench:ingress") == \
        "ray::ServeReplica:serving-bench:ingress"
    assert role("ray::ServeController.listen_for_change") == "ray::ServeController"
    assert role("ray::ProxyActor") == "ray::ProxyActor"
