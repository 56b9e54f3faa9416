"""The gateway's loaded-version cache: bounded (LRU), never unloading what routing needs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from keelwork.core.predictions import PredictionRecord
from keelwork.errors import ModelNotFoundError, RefNotAllowedError
from keelwork.service.gateway.context import RequestContext
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.service.gateway.routes import RolloutRoute
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {{name: t, owners: [t@example.com]}}
models:
  - {{name: m, runtime: python, artifact: "x:y", batching: {{enabled: false}}}}
  - {{name: backup, runtime: python, artifact: "x:y", batching: {{enabled: false}}}}
  - {{name: main, runtime: python, artifact: "x:y", fallback: backup@stable,
     batching: {{enabled: false}}}}
guards: {{max_loaded_versions: {bound}, version_refs: {refs}}}
"""

VERSIONS = 20
CHAMPION = 1


class Runtime:
    kind = "fake"

    def __init__(self, target: ModelTarget, unloaded: list[str],
                 gate: asyncio.Event | None = None) -> None:
        self.target = target
        self.unloaded = unloaded

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        return [self.target.version for _ in instances]

    def unload(self) -> None:
        self.unloaded.append(self.target.label)


class Sink:
    async def write(self, records: Sequence[PredictionRecord]) -> None:
        return None


def sync(fn: Any) -> Any:
    """Run an async test body on a fresh event loop (the suite has no async plugin)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def _gateway(bound: int, refs: str = "any") -> tuple[Gateway, list[str], list[str]]:
    spec = parse_spec(SPEC.format(bound=bound, refs=refs), env={})
    loaded: list[str] = []
    unloaded: list[str] = []
    aliases = {"champion": CHAMPION, "stable": 2}

    def resolve(name: str, ref: str | None) -> ModelTarget:
        if ref is None:
            version = CHAMPION
        elif ref.isdigit():
            version = int(ref)
        elif ref in aliases:
            version = aliases[ref]
        else:
            raise ModelNotFoundError(f"no alias {ref!r}")
        if not 1 <= version <= VERSIONS:
            raise ModelNotFoundError(f"no version {version}")
        return ModelTarget(name, version, "python", "x:y")

    def load(target: ModelTarget) -> Runtime:
        loaded.append(target.label)
        return Runtime(target, unloaded)

    return Gateway(spec, resolve, load, Sink()), loaded, unloaded


@sync
async def test_loading_past_the_bound_unloads_the_least_recently_used() -> None:
    gw, _, unloaded = _gateway(bound=4)
    await gw.start()  # m:1, backup:1, main:1 (the champions)
    for v in range(2, 12):
        result = await gw.predict("m", str(v), [{}])
        assert result.version == v
    assert len(gw.loaded()) <= 4
    # champions stay; the versions a client named went, oldest first
    kept = {t.label for t in gw.loaded()}
    assert {"m:1", "backup:1", "main:1"} <= kept
    assert unloaded == [f"m:{v}" for v in range(2, 11)]
    # a recently used version stays while an older one goes
    await gw.predict("m", "11", [{}])
    await gw.predict("m", "12", [{}])
    assert "m:12" in {t.label for t in gw.loaded()}
    await gw.close()


@sync
async def test_champions_rollout_arms_and_fallbacks_are_never_unloaded() -> None:
    gw, _, unloaded = _gateway(bound=1)
    await gw.start()
    fb = await gw.host("backup", "stable")  # the fallback of 'main'
    champion = await gw.host("m", None)
    challenger = await gw.host("m", "7")
    gw.set_rollout_route("m", RolloutRoute(1, 1, "canary", 50, champion, challenger))
    for v in range(8, 15):
        await gw.predict("m", str(v), [{}])
    kept = {t.label for t in gw.loaded()}
    assert {"m:1", "m:7", "backup:2", "backup:1", "main:1"} <= kept
    assert fb.target.label not in unloaded and "m:7" not in unloaded
    # at most the pinned ones plus the version just asked for
    assert len(kept) <= 6
    gw.set_rollout_route("m", None)  # the rollout ended: its challenger may go now
    await gw.predict("m", "15", [{}])
    await gw.predict("m", "16", [{}])
    assert "m:7" in unloaded
    await gw.close()


@sync
async def test_a_version_in_use_is_unloaded_only_after_its_calls_end() -> None:
    gw, _, unloaded = _gateway(bound=3)
    await gw.start()
    busy = await gw.host("m", "5")
    busy.acquire()  # a request is using it
    await gw.predict("m", "6", [{}])
    assert "m:5" not in {t.label for t in gw.loaded()}  # out of the cache at once...
    assert "m:5" not in unloaded and not busy.closed  # ...but not unloaded under the request
    busy.release()
    await asyncio.sleep(0.05)
    assert busy.closed and "m:5" in unloaded
    await gw.close()


@sync
async def test_an_unloaded_version_loads_again_when_asked_for() -> None:
    gw, loaded, _ = _gateway(bound=3)
    await gw.start()
    await gw.predict("m", "2", [{}])
    await gw.predict("m", "3", [{}])
    await gw.predict("m", "2", [{}])
    assert loaded.count("m:2") == 2
    await gw.close()


@pytest.mark.parametrize(("refs", "allowed", "refused"), [
    ("any", ["2", "stable", "champion"], []),
    ("aliases", ["stable", "champion"], ["2", "02"]),
    ("champion", ["champion"], ["2", "stable"]),
])
@sync
async def test_version_refs_say_what_a_client_may_address(
        refs: str, allowed: list[str], refused: list[str]) -> None:
    gw, loaded, _ = _gateway(bound=8, refs=refs)
    await gw.start()
    before = list(loaded)
    for ref in allowed:
        assert (await gw.predict("backup", ref, [{}])).model == "backup"
    for ref in refused:
        with pytest.raises(RefNotAllowedError) as err:
            await gw.predict("backup", ref, [{}])
        assert err.value.details[0].rule == "version_refs"
        assert "guards.version_refs" in err.value.message
        # an admin may still
        await gw.predict("backup", ref, [{}], RequestContext(any_ref=True))
    assert (await gw.predict("backup", None, [{}])).version == CHAMPION
    assert len(loaded) - len(before) <= len(allowed) + len(refused)
    await gw.close()


@sync
async def test_the_route_cache_stays_bounded_under_many_spellings_of_a_version() -> None:
    gw, _, _ = _gateway(bound=4)
    await gw.start()
    for i in range(3000):
        await gw.host("m", "0" * (i % 15 + 1) + "2" if i % 2 else str(i % 20 + 1))
    assert len(gw._routes) <= 1024
    await gw.close()


@sync
async def test_a_loader_is_told_once_the_champions_are_loaded_at_start() -> None:
    """``Gateway.start`` calls the loader's optional ``started()`` after its champions load
    (a version deployment's client waits for them at start, serves later loads meanwhile)."""
    spec = parse_spec(SPEC.format(bound=4, refs="any"), env={})
    seen: list[str] = []

    class Loader:
        def __call__(self, target: ModelTarget) -> Runtime:
            seen.append(target.label)
            return Runtime(target, [])

        def started(self) -> None:
            seen.append("started")

    gw = Gateway(spec, lambda name, ref: ModelTarget(name, CHAMPION, "python", "x:y"), Loader(),
                 Sink())
    await gw.start()
    assert seen == ["m:1", "backup:1", "main:1", "started"] and gw.ready
    await gw.close()
