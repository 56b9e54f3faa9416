"""GPU time of model calls on CUDA, without a GPU: a fake ``torch.cuda`` whose timing events
report a known time, through the clock and through the torch runtime's forward pass.

No GPU (nor torch) on the machines these tests run on: the CUDA path is tested with fakes that
stand for torch's documented event API (``Event(enable_timing=True)``, ``record``,
``synchronize``, ``elapsed_time`` in milliseconds).
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from keelwork.adapters.runtimes.gpu_clock import CudaClock
from keelwork.errors import ModelLoadError


class FakeCuda:
    """``torch.cuda`` whose events say each call took ``ms`` milliseconds of GPU time, and
    that records the order of what happened."""

    def __init__(self, ms: float, available: bool = True) -> None:
        self.ms = ms
        self.log: list[str] = []
        self.available = available
        cuda = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing
                self.at: float | None = None

            def record(self) -> None:
                cuda.log.append("record")

            def synchronize(self) -> None:
                cuda.log.append("synchronize")

            def elapsed_time(self, other: Event) -> float:
                return cuda.ms

        self.Event = Event

    def is_available(self) -> bool:
        return self.available


def test_the_clock_adds_each_calls_gpu_time_failed_calls_too() -> None:
    cuda = FakeCuda(ms=12.5)
    clock = CudaClock(types.SimpleNamespace(cuda=cuda))
    assert clock.run(lambda: "out") == "out"
    with pytest.raises(RuntimeError):
        clock.run(lambda: (_ for _ in ()).throw(RuntimeError("kernel failed")))
    assert clock.seconds() == pytest.approx(0.025)
    # the end event is waited for after the call, every time
    assert cuda.log == ["record", "record", "synchronize"] * 2


def test_calls_take_turns_on_the_device() -> None:
    cuda = FakeCuda(ms=1.0)
    clock = CudaClock(types.SimpleNamespace(cuda=cuda))
    inside, most = [0], [0]
    lock = threading.Lock()

    def call() -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        threading.Event().wait(0.005)
        with lock:
            inside[0] -= 1

    threads = [threading.Thread(target=clock.run, args=(call,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and clock.seconds() == pytest.approx(0.004)


class FakeTensor:
    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def to(self, device: str) -> FakeTensor:
        return FakeTensor(device)


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    cuda = FakeCuda(ms=40.0)

    class Inference:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    torch = types.SimpleNamespace(cuda=cuda, inference_mode=Inference,
                                  from_numpy=lambda arr: FakeTensor())
    monkeypatch.setitem(sys.modules, "torch", torch)
    yield torch


def test_the_torch_runtime_on_cuda_measures_its_forward_passes(fake_torch: Any) -> None:
    from keelwork.adapters.runtimes.torch import TorchRuntime

    rt = TorchRuntime("model.pt2", {"device": "cuda:0", "feature_names": ["a", "b"]})
    seen: list[str] = []

    class Module:
        def to(self, device: str) -> Module:
            seen.append(f"module to {device}")
            return self

        def __call__(self, x: FakeTensor) -> str:
            seen.append(f"input on {x.device}")
            return "logits"

    module = rt._to_device(fake_torch, Module())
    rt._module = module
    assert rt.gpu_seconds() == 0.0
    for _ in range(3):
        out, n = rt._forward([{"a": 1.0, "b": 2.0}])
        assert (out, n) == ("logits", 1)
    assert rt.gpu_seconds() == pytest.approx(0.12)
    assert seen == ["module to cuda:0"] + ["input on cuda:0"] * 3


def test_a_cuda_device_torch_cannot_see_is_a_load_error(fake_torch: Any) -> None:
    from keelwork.adapters.runtimes.torch import TorchRuntime

    fake_torch.cuda.available = False
    rt = TorchRuntime("model.pt2", {"device": "cuda"})
    with pytest.raises(ModelLoadError, match="torch sees no CUDA device"):
        rt._to_device(fake_torch, object())


def test_on_the_cpu_nothing_moves_and_no_gpu_time_is_reported(fake_torch: Any) -> None:
    from keelwork.adapters.runtimes.torch import TorchRuntime

    rt = TorchRuntime("model.pt2", {})
    module = object()
    assert rt._to_device(fake_torch, module) is module
    assert rt.gpu_seconds() == 0.0


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CUDA"])
def test_a_device_that_is_no_device_is_refused(device: str) -> None:
    from keelwork.adapters.runtimes.torch import TorchRuntime

    with pytest.raises(ModelLoadError, match=f"option 'device' .*got '{device}'"):
        TorchRuntime("model.pt2", {"device": device})
