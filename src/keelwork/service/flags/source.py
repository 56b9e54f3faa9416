"""The model flags in force for a running server, reloaded without a restart.

keel.yaml's flags first, the store's on top (by name). A server polls the store's flag
revision every ``poll_s`` seconds (one indexed ``max()`` read) and rebuilds the
:class:`~keelwork.core.flags.FlagSet` only when it moved; the admin API of the same process
reloads at once. The request path reads :attr:`FlagSource.current`, a plain attribute swapped
whole, so it takes no lock and no database call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.adapters.stores.registry_store import SqlRegistry
from keelwork.core.flags import FlagSet, parse_flags
from keelwork.core.outage import Outage
from keelwork.errors import ErrorDetail, ModelNotFoundError, SpecError, StoreError
from keelwork.spec.flags import FlagSpec

log = logging.getLogger("keelwork.flags")


class FlagSource:
    """Flags of keel.yaml plus the store's, kept current.

    Args:
        spec_flags: The flags of keel.yaml.
        store: The flag store (None: keel.yaml's only, never reloaded).
        poll_s: Seconds between revision checks in :meth:`run` (a change reaches every
            server of the store within a second, as the rollout controller's alias poll).
    """

    def __init__(self, spec_flags: Sequence[FlagSpec], store: FlagStore | None = None, *,
                 poll_s: float = 0.25) -> None:
        self.spec_flags = list(spec_flags)
        self.store = store
        self.poll_s = poll_s
        self.revision = -1
        self.reload_failures = 0
        self.current = FlagSet(self.spec_flags)
        #: Failing checks (a store outage): logged once as it starts and once as it ends.
        self.outage = Outage("flag reloader")

    def reload(self) -> FlagSet:
        """Rebuild the flags from keel.yaml and the store now.

        Raises:
            StoreError: the store failed (the flags in force stay as they were).
        """
        if self.store is None:
            return self.current
        revision = self.store.revision()
        bodies = [f.model_dump(mode="json") for f in self.spec_flags] + self.store.bodies()
        fresh = parse_flags(bodies)
        fresh.carry_errors(self.current.errors())
        self.current = fresh
        self.revision = revision
        for broken in self.current.broken:
            log.warning("flag %r is broken and serves nothing: %s", broken.name, broken.error)
        return self.current

    def check(self) -> bool:
        """Reload when the store's revision moved; returns whether it did.

        A store failure is counted, never raised: the flags in force stay. An outage is
        logged once as it starts and once as it ends, not once per check.
        """
        if self.store is None:
            return False
        try:
            changed = self.store.revision() != self.revision
            if changed:
                self.reload()
        except StoreError as exc:
            self.reload_failures += 1
            if (message := self.outage.failed(exc, time.time())) is not None:
                log.warning("%s (flags in force stay)", message)
            return False
        if (message := self.outage.succeeded(time.time())) is not None:
            log.warning(message)
        return changed

    def collect(self) -> Iterator[Any]:
        """Prometheus collector protocol: failed evaluations per flag (a counter)."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "keelwork_flag_errors", "Flag evaluations that failed or picked a version that did "
            "not resolve; the request took the usual route.", labels=["flag"])
        for name, n in sorted(self.current.errors().items()):
            family.add_metric([name], float(n))
        yield family
        reloads = CounterMetricFamily("keelwork_flag_reload_failures",
                                      "Flag reloads that failed (the flags in force stayed).")
        reloads.add_metric([], float(self.reload_failures))
        yield reloads

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll the store until ``stop`` is set (or until cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await asyncio.to_thread(self.check)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)


def unresolved_refs(flag: FlagSpec, registry: SqlRegistry) -> list[ErrorDetail]:
    """The flag's ``serve`` / ``default`` references that name no version or alias of its
    model in ``registry`` (``champion`` and ``latest`` always resolve).

    A model that is not registered yet is not checked (nothing to check against): its flags
    are judged when it is served.

    Raises:
        StoreError: the registry failed.
    """
    try:
        registry.list_versions(flag.model)
    except ModelNotFoundError:
        return []
    refs = [(f"rules.{i}.serve", r.serve) for i, r in enumerate(flag.rules)]
    if flag.default is not None:
        refs.append(("default", flag.default))
    out: list[ErrorDetail] = []
    for path, ref in refs:
        if ref in ("champion", "latest"):
            continue
        try:
            registry.resolve(f"{flag.model}:{ref}" if ref.isdigit() else f"{flag.model}@{ref}")
        except ModelNotFoundError as exc:
            out.append(ErrorDetail(path, "model_ref", ref, exc.message))
    return out


def check_refs(flags: Sequence[FlagSpec], registry: SqlRegistry, where: str) -> None:
    """Refuse flags that serve a version or alias their model does not have.

    Raises:
        SpecError: naming the flag, the field and what was got, for every such reference.
    """
    details = [ErrorDetail(f"flags[{f.name}].{d.path}", d.rule, d.got, d.message)
               for f in flags for d in unresolved_refs(f, registry)]
    if details:
        shown = "; ".join(f"{d.path} = {d.got!r}: {d.message}" for d in details[:5])
        raise SpecError(f"{where}: a flag serves a version or alias that does not exist: "
                        f"{shown}", details)
