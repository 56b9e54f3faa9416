"""What the log keeps of a request that got no answer: refused by the contract or a guard
(status ``rejected``), or failed (a timeout, the model's error, a load failure, overload).

Every instance is kept as a record, so ``keel log tail --status rejected`` shows what was sent;
a client picks what it sends, so what is stored is bounded by what it sent:

- each instance is kept as JSON of at most ``storage.max_rejected_input_bytes``
  (:func:`~keelwork.core.bounds.bound_json`); a record that was cut says so in
  ``request_meta.truncated``;
- a refused record's ``request_meta.violations`` holds the problems of *its* instance (an
  instance without any: those of the request as a whole, e.g. that more records broke the
  contract than were named), not the request's whole list: a request of 20,000 bad instances
  stores each problem once, not 20,000 times;
- the identifiers a client chose (tenant, subject) are clipped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from keelwork.core.bounds import bound_json
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.service.gateway.context import RequestContext
from keelwork.service.gateway.host import ModelTarget
from keelwork.types import PredictionSink

#: Longest error message kept with a failed request's records.
MAX_LOGGED_ERROR = 1000
#: Longest client-chosen identifier (tenant, subject) kept in a record.
MAX_IDENTIFIER = 256
#: Problems of one instance kept with its refused record.
MAX_OWN_PROBLEMS = 50

_INDEX = re.compile(r"^instances\[(\d+)\]")


def clip(value: str | None, limit: int = MAX_IDENTIFIER) -> str | None:
    """``value`` cut to ``limit`` characters (None stays None)."""
    return value if value is None or len(value) <= limit else value[:limit]


def problems_by_instance(details: Sequence[ErrorDetail], n: int
                         ) -> tuple[dict[int, list[ErrorDetail]], list[ErrorDetail]]:
    """The problems of each instance (by its index in ``instances[i]`` paths, at most
    :data:`MAX_OWN_PROBLEMS` each) and those of the request as a whole (any other path)."""
    own: dict[int, list[ErrorDetail]] = {}
    whole: list[ErrorDetail] = []
    for d in details:
        m = _INDEX.match(d.path)
        i = int(m.group(1)) if m else -1
        if 0 <= i < n:
            mine = own.setdefault(i, [])
            if len(mine) < MAX_OWN_PROBLEMS:
                mine.append(d)
        elif len(whole) < MAX_OWN_PROBLEMS:
            whole.append(d)
    return own, whole


class RefusalLog:
    """Writes the records of requests that got no answer.

    Args:
        sink: The prediction log.
        stored: What the log keeps of an instance (redacted; None without
            ``storage.log_inputs``).
        subject: The subject of an instance in a request (the header's, or the contract's
            ``subject_field``).
        log_inputs: ``storage.log_inputs``.
        max_bytes: ``storage.max_rejected_input_bytes``.
    """

    def __init__(self, sink: PredictionSink, stored: Callable[[Any], Any],
                 subject: Callable[[RequestContext, Any], str | None], log_inputs: bool,
                 max_bytes: int) -> None:
        self._sink = sink
        self._stored = stored
        self._subject = subject
        self._log_inputs = log_inputs
        self._bound = max_bytes

    def _record(self, target: ModelTarget, ctx: RequestContext, inst: Any, now: float,
                latency_ms: float, status: str, guard: str | None, meta: dict[str, Any],
                cut_meta: bool = False) -> PredictionRecord:
        bound = self._bound
        inputs, cut_input = (bound_json(self._stored(inst), bound) if self._log_inputs
                             else (None, False))
        truncated = [k for k, c in (("inputs", cut_input), ("violations", cut_meta)) if c]
        return PredictionRecord(
            id=new_prediction_id(), ts=now, model=target.name, version=target.version,
            tenant=clip(ctx.tenant), subject_id=clip(self._subject(ctx, inst)), inputs=inputs,
            outputs=None, latency_ms=latency_ms, model_latency_ms=None, status=status,
            guard=guard, answered_by=None,
            request_meta={**meta, "truncated": {"fields": truncated, "max_bytes": bound}}
            if truncated else meta)

    async def refused(self, target: ModelTarget, instances: list[Any], ctx: RequestContext,
                      guard: str, started: float, details: list[ErrorDetail]) -> None:
        """Keep a refused request's instances (status ``rejected``, ``guard`` naming what
        refused it), each with its own problems.

        Raises:
            StoreError: the log failed (the caller answers its own error regardless).
        """
        now = time.time()
        latency_ms = (time.perf_counter() - started) * 1000.0
        own, whole = problems_by_instance(details, len(instances))
        records = []
        for i, inst in enumerate(instances):
            mine = own.get(i) or whole  # an instance without problems: why it was refused
            violations, cut = bound_json([d.as_dict() for d in mine], self._bound)
            records.append(self._record(target, ctx, inst, now, latency_ms, "rejected", guard,
                                        {**ctx.meta, "violations": violations}, cut))
        await self._sink.write(records)

    async def failed(self, target: ModelTarget, instances: list[Any], ctx: RequestContext,
                     started: float, error: KeelworkError, *, guard: str | None,
                     status: str = "error") -> None:
        """Record a request that got no answer with its error, so ``keel log tail --status
        error`` shows it. Best effort: a failing log never replaces the request's own error.
        The input may not have been checked yet (a load failure comes first)."""
        now = time.time()
        latency_ms = (time.perf_counter() - started) * 1000.0
        meta = {**ctx.meta, "error": error.message[:MAX_LOGGED_ERROR],
                "error_type": type(error).__name__}
        records = [self._record(target, ctx, inst, now, latency_ms, status, guard, meta)
                   for inst in instances]
        try:
            await self._sink.write(records)
        except Exception:  # the log counts its own failures; the caller gets its error
            return


__all__ = ["MAX_IDENTIFIER", "MAX_LOGGED_ERROR", "MAX_OWN_PROBLEMS", "RefusalLog", "clip",
           "problems_by_instance"]
