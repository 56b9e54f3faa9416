"""One rollout arm's answers read back from the prediction log.

The gateway counts each arm's answers live, per process. Two reads of the shared log stand in
for (or beside) those counts:

- :func:`interval_answers`: every answer of a version logged in a time range, by whichever
  process answered it. The holder of the lease of a fleet (``keel serve --workers N``) decides
  a rollout on these, so the decision sees the whole fleet's traffic, not its own share.
- :func:`recent_answers`: the latest answers of a version, the champion's side of a comparison
  when it answers nothing itself (a canary's 100 % step).

The log holds one row per instance, so a batch request counts once per instance here (live
counts are per request), each with the request's latency. Answers served by the fallback, model
errors and timeouts count as errors and refused requests as contract violations, as the gateway
counts them live, so an arm's error rate is not flattered by leaving its failures out.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError

from keelwork.adapters.stores.prediction_store import prediction_payloads, predictions
from keelwork.adapters.stores.subject_keys import open_payloads
from keelwork.adapters.stores.transactions import connection
from keelwork.core.rollout.analysis import MAX_LATENCIES, MAX_OUTPUTS, ArmStats

#: The statuses of a served answer (or a refusal) of an arm that takes live traffic.
ANSWERED = ("ok", "fallback", "rejected", "error", "timeout")
#: A shadow challenger's copies: answered, or failed.
SHADOWED = ("shadow", "shadow_error")
_STORE = "prediction log"


def interval_answers(engine: Engine, model: str, version: int, since: float, until: float, *,
                     shadow: bool = False) -> ArmStats:
    """Every answer of ``model`` ``version`` logged in ``[since, until)`` (epoch s), as one
    arm's statistics: the counts over all of them, latencies and outputs of the latest
    (bounded as the live window bounds them). ``shadow``: the arm is a shadow challenger (its
    copies are logged as ``shadow`` / ``shadow_error``).

    Raises:
        StoreError: the store failed.
    """
    p, q = predictions, prediction_payloads
    statuses = SHADOWED if shadow else ANSWERED
    where = (p.c.model == model, p.c.version == version, p.c.ts >= since, p.c.ts < until,
             p.c.status.in_(statuses))
    counted = (sa_select(p.c.status, p.c.guard, func.count()).where(*where)
               .group_by(p.c.status, p.c.guard))
    latest = (sa_select(p.c.status, p.c.guard, p.c.latency_ms, q.c.outputs)
              .outerjoin(q, q.c.id == p.c.id).where(*where)
              .order_by(p.c.ts.desc()).limit(MAX_LATENCIES))
    stats = ArmStats()
    with connection(engine, _STORE, "reading a rollout arm's answers") as conn:
        for status, guard, n in conn.execute(counted):
            stats.count(_live_status(status), None if shadow else guard, int(n))
        rows = [{"s": s, "ms": ms, "outputs": o} for s, _g, ms, o in conn.execute(latest)]
    for row in reversed(open_payloads(engine, rows)):
        stats.latencies_ms.append(float(row["ms"]))
        _keep_output(stats, _live_status(row["s"]), row["outputs"])
    return stats


def recent_answers(engine: Engine, model: str, version: int, before: float,
                   limit: int = MAX_OUTPUTS) -> ArmStats:
    """The latest ``limit`` answers of ``model`` ``version`` logged before ``before`` (epoch
    s), as one arm's statistics: the champion's side of a comparison when it answers nothing
    itself (a canary's 100 % step). A store without the prediction log has no answers (an
    empty :class:`ArmStats`).
    """
    p, q = predictions, prediction_payloads
    stmt = (sa_select(p.c.status, p.c.guard, p.c.latency_ms, q.c.outputs)
            .outerjoin(q, q.c.id == p.c.id)
            .where(p.c.model == model, p.c.version == version, p.c.ts < before,
                   p.c.status.in_(ANSWERED))
            .order_by(p.c.ts.desc()).limit(limit))
    try:
        with engine.connect() as conn:
            rows = open_payloads(engine, [{"s": s, "g": g, "ms": ms, "outputs": o}
                                          for s, g, ms, o in conn.execute(stmt).all()])
    except SQLAlchemyError:
        return ArmStats()
    stats = ArmStats()
    for row in reversed(rows):
        stats.count(row["s"], row["g"])
        stats.latencies_ms.append(float(row["ms"]))
        _keep_output(stats, row["s"], row["outputs"])
    return stats


def _live_status(status: str) -> str:
    """A logged status as the live window records it (a shadow copy: ok or error)."""
    return {"shadow": "ok", "shadow_error": "error"}.get(status, status)


def _keep_output(stats: ArmStats, status: str, outputs: Any) -> None:
    if status not in ("ok", "fallback") or outputs is None or len(stats.outputs) >= MAX_OUTPUTS:
        return
    try:
        stats.outputs.append(json.loads(outputs))
    except ValueError:  # an unreadable payload (an erased subject's) is no output
        return


__all__ = ["ANSWERED", "SHADOWED", "interval_answers", "recent_answers"]
