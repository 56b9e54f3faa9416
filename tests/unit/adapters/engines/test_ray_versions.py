"""The version deployment's batching with Ray's own ``@serve.batch`` (run on an event loop
here, no Ray cluster: the decorator needs none) keeps ray #42593's failure modes: one request
whose instances make the model raise fails alone and its neighbours are answered, a caller that
gives up while its batch runs breaks nothing. And the keeper and the client, with stand-ins
for Ray and the store: one application per used version, deleted once nobody uses it."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from keelwork.adapters.engines import ray_versions
from keelwork.adapters.engines.ray_versions import (
    VersionClient,
    VersionKeeper,
    VersionRuntime,
    app_name,
    version_class,
)
from keelwork.core.batch_members import Answer, Failure
from keelwork.errors import EngineError, PredictionError

pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install 'keelwork[ray]'")

POISON = 13


@dataclass(frozen=True)
class _Target:
    name: str = "picky"
    version: int = 1
    runtime: str = "python"
    artifact: str = "fakes:picky"
    options: dict[str, Any] = field(default_factory=dict)
    allow_unsafe_pickle: bool = False


class _Runtime:
    """Answers 3.0 per instance after 0.05 s; a call holding b == 13 raises."""

    kind = "python"
    signature = None

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.unloaded = False

    def predict(self, instances: list[Any]) -> list[float]:
        self.calls.append(len(instances))
        time.sleep(0.05)
        if any(i.get("b") == POISON for i in instances):
            raise ValueError(f"b == {POISON} is poison")
        return [3.0 for _ in instances]

    def predict_proba(self, instances: list[Any]) -> None:
        return None

    def unload(self) -> None:
        self.unloaded = True


@pytest.fixture(autouse=True)
def _in_a_replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What Ray's batcher reads of its replica (it checks the bound of calls in flight). After
    the test, what is left of Ray's batch queues is collected on a running loop: collected
    later, in a thread with no loop (a later test's), each would open a loop of its own and
    leave its socket open."""
    import ray.serve

    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=1024),
                              replica_id=SimpleNamespace(unique_id="test"))
    monkeypatch.setattr(ray.serve, "get_replica_context", lambda: context)
    yield

    async def collect() -> None:
        gc.collect()

    asyncio.run(collect())


def _collect() -> None:
    """Ray's batch queue stops its task when collected on a running loop (collected later,
    it would open a loop of its own and leave it open)."""
    gc.collect()


def _deployment(max_batch_size: int = 16, wait_s: float = 0.05) -> tuple[Any, _Runtime]:
    runtime = _Runtime()
    cls = version_class(max_batch_size, wait_s)
    return cls(_Target(), lambda target: runtime), runtime


def test_serve_batch_poisoned_request_fails_alone() -> None:
    async def run() -> tuple[list[Any], _Runtime]:
        version, runtime = _deployment()
        calls = [version.predict([{"a": 1, "b": b}]) for b in [*range(8), POISON]]
        served = list(await asyncio.gather(*calls))
        assert all(cpu >= 0 and gpu == 0 for _, cpu, gpu in served)
        outcomes = [outcome for outcome, _, _ in served]
        del version, calls
        _collect()
        return outcomes, runtime

    outcomes, runtime = asyncio.run(run())
    assert outcomes[:8] == [Answer([3.0])] * 8
    assert outcomes[8] == Failure("ValueError", f"b == {POISON} is poison")
    assert runtime.calls[0] == 9, runtime.calls  # batched together by @serve.batch
    assert sorted(runtime.calls[1:]) == [1] * 9  # then each request alone


def test_serve_batch_shares_gpu_time_by_instances() -> None:
    class _Gpu(_Runtime):
        total = 0.0

        def gpu_seconds(self) -> float:
            return self.total

        def predict(self, instances: list[Any]) -> list[float]:
            self.total += 0.5  # each call: half a GPU second
            return super().predict(instances)

    async def run() -> list[Any]:
        runtime = _Gpu()
        version = version_class(16, 0.05)(_Target(), lambda target: runtime)
        served = list(await asyncio.gather(version.predict([{"a": 1, "b": 0}]),
                                           version.predict([{"a": 1, "b": 0}] * 3)))
        del version
        _collect()
        return served

    served = asyncio.run(run())
    assert [gpu for _, _, gpu in served] == [0.125, 0.375]  # one call of 4, shared by instances


def test_serve_batch_bounds_a_batch_in_instances() -> None:
    async def run() -> _Runtime:
        version, runtime = _deployment(max_batch_size=4)
        await asyncio.gather(*(version.predict([{"a": 1, "b": 0}] * 2) for _ in range(4)))
        big = await version.predict([{"a": 1, "b": 0}] * 9)  # larger than the bound: alone
        assert big[0] == Answer([3.0] * 9)
        del version
        _collect()
        return runtime

    runtime = asyncio.run(run())
    assert runtime.calls[:2] == [4, 4] and runtime.calls[2] == 9, runtime.calls


def test_serve_batch_takes_everything_that_arrived_while_the_model_ran() -> None:
    """Adaptive under load: requests arriving while a batch runs are one batch next. Ray's own
    batcher (2.60) forms each batch as its window closes, even while the last one runs, and
    queues it behind that one: with a busy model it made batches of one and ran them in turn
    (a 0.3 s model with 4 clients answered past 1 s; the gateway's timeout failed them all)."""
    async def run() -> _Runtime:
        version, runtime = _deployment(wait_s=0.002)
        first = asyncio.ensure_future(version.predict([{"a": 1, "b": 0}]))
        await asyncio.sleep(0.02)  # its batch runs (0.05 s)
        later = []
        for b in range(7):  # arriving one by one, each past the last one's window
            later.append(asyncio.ensure_future(version.predict([{"a": 1, "b": b}])))
            await asyncio.sleep(0.004)
        served = await asyncio.gather(first, *later)
        assert [outcome for outcome, _, _ in served] == [Answer([3.0])] * 8
        del version, first, later
        _collect()
        return runtime

    runtime = asyncio.run(run())
    assert runtime.calls == [1, 7], runtime.calls


def test_serve_batch_a_caller_giving_up_breaks_nothing() -> None:
    async def run() -> list[Any]:
        version, _ = _deployment()
        quitter = asyncio.ensure_future(version.predict([{"a": 1, "b": 100}]))
        others = [asyncio.ensure_future(version.predict([{"a": 1, "b": b}])) for b in range(3)]
        await asyncio.sleep(0.07)  # its batch is running
        quitter.cancel()
        answers = [outcome for outcome, _, _ in await asyncio.gather(*others)]
        answers.append((await version.predict([{"a": 1, "b": 5}]))[0])  # still serves
        del version, quitter, others
        _collect()
        return answers

    assert asyncio.run(run()) == [Answer([3.0])] * 4


class _Response:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self, timeout_s: float | None = None) -> Any:
        return self.value

    def __await__(self) -> Any:
        async def value() -> Any:
            return self.value
        return value().__await__()


class _Method:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def remote(self, *args: Any) -> _Response:
        return _Response(self.answer(*args))


class _Handle:
    def __init__(self) -> None:
        self.describe = _Method(lambda: ("sig", "python", "r1@host:1"))
        self.predict = _Method(lambda instances: (Answer([1.0] * len(instances)), 0.25, 0.0)
                               if instances[0] != POISON
                               else (Failure("ValueError", "poison"), 0.5, 0.125))


class _Serve:
    """Ray Serve's calls the client and the keeper make, recorded."""

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}
        self.deleted: list[str] = []

    def get_app_handle(self, name: str) -> _Handle:
        if name not in self.apps:
            raise RuntimeError(f"no app {name}")
        return _Handle()

    def run(self, app: Any, name: str, route_prefix: str | None, blocking: bool) -> None:
        assert route_prefix is None and not blocking
        self.apps[name] = app

    def status(self) -> Any:
        """Every application running, its one deployment with two replicas."""
        deployment = SimpleNamespace(replica_states={"RUNNING": 2, "STARTING": 1})
        return SimpleNamespace(applications={name: SimpleNamespace(
            status="RUNNING", message="", deployments={"d": deployment})
            for name in self.apps})

    def delete(self, name: str, _blocking: bool = True) -> None:
        self.deleted.append(name)
        self.apps.pop(name, None)


class _Uses:
    """The store's record of uses, in memory, with a clock of its own."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self.now = 0.0

    def use(self, app: str, replica: str, target: dict[str, Any]) -> None:
        self.rows[(app, replica)] = (target, self.now)

    def renew(self, apps: list[str], replica: str) -> None:
        for app in apps:
            self.rows[(app, replica)] = (self.rows[(app, replica)][0], self.now)

    def drop(self, app: str, replica: str) -> None:
        self.rows.pop((app, replica), None)

    def needed(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {a: t for (a, _), (t, _) in self.rows.items() if a.startswith(prefix)}

    def forget_unused(self, prefix: str, idle_s: float) -> list[str]:
        stale = {k for k, (_, seen) in self.rows.items() if seen < self.now - idle_s}
        for k in stale:
            del self.rows[k]
        left = {a for a, _ in self.rows}
        return sorted({a for a, _ in stale} - left)


def test_keeper_creates_one_app_per_used_version_and_deletes_unused(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    serve, uses = _Serve(), _Uses()
    monkeypatch.setattr(ray_versions, "_module", lambda name: serve)
    keeper = VersionKeeper("svc", uses, lambda target: ("bound", target["version"]), idle_s=30)
    a, b = (VersionClient("svc", uses, replica=r) for r in ("r1", "r2"))
    uses.use(app_name("svc", "picky", 1), "r1", {"version": 1})
    uses.use(app_name("svc", "picky", 1), "r2", {"version": 1})  # two replicas, one version
    with caplog.at_level(logging.INFO, logger="keelwork.ray"):
        keeper.tick()
        keeper.tick()
    assert serve.apps == {"svc--version--picky-v1": ("bound", 1)}
    # Serve's status, as the keeper logs it once the application runs.
    running = [r.getMessage() for r in caplog.records if "is running" in r.getMessage()]
    assert running == ["svc--version--picky-v1 is running: d with 2 running replicas"]
    runtime = a(_Target())  # the app exists: the handle answers
    assert isinstance(runtime, VersionRuntime) and runtime.tag == "r1@host:1"
    assert runtime.predict([1, 2]) == [1.0, 1.0]
    assert asyncio.run(runtime.predict_async([1])) == [1.0]
    with pytest.raises(PredictionError, match="picky:1 raised ValueError: poison"):
        runtime.predict([POISON])
    assert runtime.cpu_seconds() == 1.0  # each call's CPU share in the version replica
    assert runtime.gpu_seconds() == 0.125
    b(_Target())
    runtime.unload()  # r1 lets it go; r2 still uses it
    uses.now = 100.0
    uses.renew([app_name("svc", "picky", 1)], "r2")
    keeper.tick()
    assert serve.deleted == [] and app_name("svc", "picky", 1) in serve.apps
    uses.now = 200.0  # r2 stopped renewing (it died): deleted
    keeper.tick()
    assert serve.deleted == [app_name("svc", "picky", 1)] and serve.apps == {}
    a.close()
    b.close()


def test_the_version_replicas_cpu_reaches_the_gateways_observer() -> None:
    """A runtime that batches on its own (``predict_async``) is awaited with the gateway's
    batcher aside, and the CPU seconds it reports (``cpu_seconds``) reach the cost observer."""
    from keelwork.service.gateway.host import ModelHost, ModelTarget
    from keelwork.spec.model import BatchingSection

    class _Remote:
        kind = "ray-version:python"
        signature = None

        def __init__(self) -> None:
            self.total = 0.0
            self.calls: list[list[Any]] = []

        def cpu_seconds(self) -> float:
            return self.total

        async def predict_async(self, instances: list[Any]) -> list[Any]:
            self.calls.append(instances)
            self.total += 0.125
            if POISON in instances:
                raise PredictionError("The model m:1 raised ValueError: poison")
            return [1.0] * len(instances)

        def unload(self) -> None:
            pass

    seen: list[float] = []
    remote = _Remote()

    async def run() -> None:
        host = ModelHost(ModelTarget("m", 1, "python", "x"), remote,  # type: ignore[arg-type]
                         BatchingSection(max_batch_size=16, max_wait_ms=50),
                         cpu_observer=lambda target, s: seen.append(s))
        assert await asyncio.gather(host.predict([1]), host.predict([2, 3])) == [
            [1.0], [1.0, 1.0]]
        with pytest.raises(PredictionError, match="poison"):
            await host.predict([POISON])
        await host.close()

    asyncio.run(run())
    assert remote.calls == [[1], [2, 3], [POISON]]  # one call each: the gateway did not batch
    assert seen == [0.125, 0.125, 0.125]


def test_keeper_deploys_a_registered_version_ahead_and_lets_it_go_unused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    serve, uses = _Serve(), _Uses()
    monkeypatch.setattr(ray_versions, "_module", lambda name: serve)
    app = app_name("svc", "picky", 2)
    keeper = VersionKeeper("svc", uses, lambda target: ("bound", target["version"]), idle_s=30,
                           registered=lambda: {app: {"version": 2}})
    keeper.tick()
    assert serve.apps == {app: ("bound", 2)}  # before any replica asked for it
    uses.now = 20.0
    keeper.tick()  # seen once only: not renewed by the keeper
    uses.now = 40.0
    keeper.tick()
    assert serve.deleted == [app] and serve.apps == {}


def test_a_version_without_a_deployment_is_served_in_process_until_its_deployment_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the gateway has started, a version whose deployment is not up yet (an alias, flag
    or rollout naming it) is loaded in the gateway's process and answers at once; when its
    deployment answers, the calls go there and the in-process runtime is unloaded."""
    serve, uses = _Serve(), _Uses()
    monkeypatch.setattr(ray_versions, "_module", lambda name: serve)
    monkeypatch.setattr(ray_versions, "READY_TIMEOUT_S", 0.5)
    local = _Runtime()
    client = VersionClient("svc", uses, replica="r1", fallback=lambda target: local)
    app = app_name("svc", "picky", 1)
    # At start (before `started`) it waits for the deployment, as without a fallback.
    with pytest.raises(EngineError, match=r"did not start in 0\.5 s"):
        client(_Target())
    client.started()
    runtime = client(_Target())
    assert not runtime.attached and runtime.kind == "ray-version:python"
    assert (app, "r1") in uses.rows  # the keeper deploys it
    assert runtime.predict([{"b": 1}]) == [3.0]
    assert asyncio.run(runtime.predict_async([{"b": 1}, {"b": 2}])) == [3.0, 3.0]
    assert local.calls == [1, 2] and runtime.cpu_seconds() > 0
    with pytest.raises(PredictionError, match=r"^The model picky:1 raised ValueError: b == 13"):
        runtime.predict([{"b": POISON}])  # named as the deployment's answer names it
    serve.apps[app] = "bound"  # the keeper's deployment is up
    deadline = time.monotonic() + 5
    while not runtime.attached:
        assert time.monotonic() < deadline, "never switched to the deployment"
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while not local.unloaded:
        assert time.monotonic() < deadline, "the in-process runtime was never unloaded"
        time.sleep(0.01)
    assert runtime.predict([1, 2]) == [1.0, 1.0] and local.calls == [1, 2, 1]
    assert runtime.tag == "r1@host:1"
    runtime.unload()
    assert (app, "r1") not in uses.rows
    client.close()


def test_unloading_before_the_deployment_answers_stops_waiting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    serve, uses = _Serve(), _Uses()
    monkeypatch.setattr(ray_versions, "_module", lambda name: serve)
    local = _Runtime()
    client = VersionClient("svc", uses, replica="r1", fallback=lambda target: local)
    client.started()
    runtime = client(_Target())
    runtime.unload()
    assert local.unloaded and uses.rows == {}
    serve.apps[app_name("svc", "picky", 1)] = "bound"
    time.sleep(0.5)
    assert not runtime.attached
    client.close()


def test_the_version_deployments_count_replicas_as_the_gateway(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """keel.yaml's ``server.replicas`` (or ``--replicas``) counts each version's replicas as it
    counts the gateway's: a fixed count, or the autoscaler's bounds and target."""
    from keelwork.adapters.engines.ray_serve import replica_count
    from keelwork.adapters.engines.ray_versions import version_options

    assert version_options("m-v1", replica_count(3, None, 2.0))["num_replicas"] == 3
    auto = version_options("m-v1", replica_count(1, 4, 5.0))
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {"min_replicas": 1, "initial_replicas": 1,
                                          "max_replicas": 4, "target_ongoing_requests": 5.0}
    bound: dict[str, Any] = {}

    class _Deployment:
        def bind(self, *args: Any) -> str:
            return "app"

    def deployment(cls: type, **options: Any) -> _Deployment:
        bound.update(options)
        return _Deployment()

    serve = SimpleNamespace(deployment=deployment, batch=lambda **kw: lambda f: f)
    monkeypatch.setattr(ray_versions, "_module", lambda name: serve)
    assert ray_versions.bind_version(_Target(), lambda t: _Runtime(), 8, 0.01, {"A": "1"},
                                     replica_count(2, 2, 2.0)) == "app"
    assert bound["num_replicas"] == 2 and bound["name"] == "picky-v1"
    assert bound["ray_actor_options"]["runtime_env"] == {"env_vars": {"A": "1"}}


def test_a_slow_controller_does_not_hold_back_a_version_coming_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's ``get_app_handle`` asks its controller, which a loaded machine can keep for a
    second: a version loaded while serving (a rollback to it, an alias moved) does not wait for
    it, but is served in-process at once; its handle, once found, is kept for the next load."""

    class _SlowController(_Serve):
        looked: list[str] = []

        def get_app_handle(self, name: str) -> _Handle:
            self.looked.append(name)
            time.sleep(1.0)
            return super().get_app_handle(name)

    serve, uses = _SlowController(), _Uses()
    monkeypatch.setattr(ray_versions, "_module", lambda name: serve)
    app = app_name("svc", "picky", 1)
    serve.apps[app] = "bound"
    client = VersionClient("svc", uses, replica="r1", fallback=lambda target: _Runtime())
    client.started()
    began = time.monotonic()
    first = client(_Target())
    assert time.monotonic() - began < 0.5 and not first.attached  # in-process meanwhile
    deadline = time.monotonic() + 5
    while not first.attached:  # the look left running found the deployment
        assert time.monotonic() < deadline, "never switched to the deployment"
        time.sleep(0.01)
    first.unload()
    again = client(_Target())  # the same version, back: its handle kept, no controller call
    assert again.attached and serve.looked.count(app) <= 2
    looked = len(serve.looked)
    client(_Target())
    assert len(serve.looked) == looked
    client.close()
