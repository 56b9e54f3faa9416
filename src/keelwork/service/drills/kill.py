"""The kill -9 drill: ``keel serve`` of a scratch copy is killed with SIGKILL while clients
are sending predictions; every prediction id it acknowledged (a 200 answer) must then be in
the prediction log.

Durability works so: with ``storage.durability: sync`` an answer leaves only once its rows are
committed or fsynced into the spool; a restarted server replays the spool. The drill does what
the restart does (:class:`~keelwork.adapters.stores.prediction_log.PredictionLog` started on
the scratch store and spool, flushed, closed) before it counts.
"""

from __future__ import annotations

import time

from keelwork.errors import DrillUnavailable
from keelwork.service.check_item import CheckItem
from keelwork.service.drills.live import Load, drill_rows, start_server, stop_server
from keelwork.service.drills.scratch import Scratch, scratch_project
from keelwork.spec.model import ResolvedSpec

NAME = "kill_drill"
#: How long the load runs after the first acknowledged prediction, before the kill.
LOAD_S = 1.5
#: Fewer acknowledged predictions than this prove nothing.
MIN_ACKED = 20


def kill_drill(resolved: ResolvedSpec, store_url: str, *, timeout_s: float = 60.0
               ) -> CheckItem:
    """Run the drill (see the module's docstring) on the first model of keel.yaml.

    Args:
        resolved: The user's keel.yaml (never modified).
        store_url: The user's store (only read: copied into the scratch store).
        timeout_s: Bound on the server's start, the wait for traffic and the spool's replay.

    Returns:
        pass, fail with the facts, or not_checked with the reason.
    """
    try:
        rows = drill_rows(resolved)
        name = resolved.spec.models[0].name
        with scratch_project(resolved, store_url) as scratch:
            proc, base = start_server(scratch, timeout_s)
            try:
                with Load(base, name, rows) as load:
                    if not load.wait_for(lambda seen: any(a.ids for a in seen), timeout_s):
                        raise DrillUnavailable(f"no prediction was acknowledged in "
                                               f"{timeout_s:.0f} s")
                    time.sleep(LOAD_S)
                    proc.kill()  # SIGKILL: no shutdown hook runs
                    proc.wait(timeout=10)
            finally:
                stop_server(proc)
            acked = [i for a in load.snapshot() for i in a.ids]
            return _count(scratch, acked, resolved.spec.storage.durability, timeout_s)
    except DrillUnavailable as exc:
        return CheckItem(NAME, "not_checked", exc.message, "see docs/check.md")


def _count(scratch: Scratch, acked: list[str], durability: str, timeout_s: float
           ) -> CheckItem:
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.prediction_log import PredictionLog
    from keelwork.adapters.stores.store_copy import stored_prediction_ids

    spool = scratch.load().spool_dir
    engine = make_engine(scratch.url)
    try:  # what a restarted server does first: replay the spool
        recovered = PredictionLog(engine, spool)
        recovered.start()
        drained = recovered.flush(timeout=timeout_s)
        recovered.close(timeout=timeout_s)
    finally:
        engine.dispose()
    stored = stored_prediction_ids(scratch.url, acked)
    lost = len(set(acked) - stored)
    facts = {"acknowledged": len(acked), "lost": lost, "durability": durability,
             "spool_drained": drained}
    if not lost and len(acked) < MIN_ACKED:
        return CheckItem(NAME, "not_checked", f"only {len(acked)} predictions acknowledged "
                         "before the kill: too few to mean anything", "rerun on a less loaded "
                         "machine", facts)
    if lost:
        fix = ("set storage.durability: sync (async acknowledges before the rows are durable)"
               if durability == "async" else "report it: sync durability must lose nothing")
        return CheckItem(NAME, "fail", f"{lost} of {len(acked)} acknowledged predictions "
                         "were lost after kill -9", fix, facts)
    return CheckItem(NAME, "pass", f"all {len(acked)} predictions acknowledged before "
                     "kill -9 are in the prediction log", facts=facts)


__all__ = ["NAME", "kill_drill"]
