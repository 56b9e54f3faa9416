"""Predict for many requests at once, each answered on its own: the use-case of an engine whose
HTTP front forms the batches (``keel serve --engine mosec``).

Two steps, as the engine runs them:

1. :meth:`BatchPredictor.breaks_contract`, once per request: its instances are checked against
   the contract alone (no event loop on this path). A request that breaks it goes through
   :meth:`BatchPredictor.refuse`, the gateway's refusal path
   (:meth:`~keelwork.service.gateway.gateway.Gateway.predict` checks, counts the validation
   failures, logs the refusal and raises :class:`~keelwork.errors.ContractViolation` naming every
   field), so it is answered its own 422 and never joins a batch.
2. :meth:`BatchPredictor.predict`, once per batch of admitted requests: their instances are
   merged (:func:`merge`) and the gateway runs ONE predict for them (the contract check, the
   model call, the durable prediction log with one record per instance, the metrics); the
   answers are cut back per request (:func:`split`). Requests that ask for class probabilities
   and requests that do not are predicted apart (the gateway computes probabilities per call).

A failure of the batch call (the model raised, timed out) is the failure of every request in it:
they shared the one model call (:meth:`BatchPredictor.predict`, Mosec's engine). Granian's
queues (:class:`BatchQueue`) use :meth:`BatchPredictor.predict_each`: a failure one request
may have caused is isolated by asking again one request at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keelwork.errors import ContractViolation, ErrorDetail, IsolateRequests, Overloaded, SpecError
from keelwork.service.gateway.context import PredictResult, RequestContext
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelHost
from keelwork.spec.model import KeelSpec, ResolvedSpec

T = TypeVar("T")

#: What the request context's ``meta["protocol"]`` says of a request served this way.
PROTOCOL = "v1"


def merge(requests: Sequence[Sequence[T]]) -> tuple[list[T], list[int]]:
    """The instances of ``requests`` in one list, and how many each request brought."""
    sizes = [len(r) for r in requests]
    return [x for r in requests for x in r], sizes


def split(values: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """``values`` cut back into consecutive runs of ``sizes`` (the inverse of :func:`merge`).

    Raises:
        ValueError: ``sizes`` do not add up to ``len(values)``.
    """
    if sum(sizes) != len(values):
        raise ValueError(f"{len(values)} values cannot be cut into runs of {list(sizes)}.")
    out: list[list[T]] = []
    at = 0
    for n in sizes:
        out.append(list(values[at:at + n]))
        at += n
    return out


#: Headers that never steer a request (transport, credentials, per-request ids): left out of
#: :class:`Caller`, so that requests which differ only in them share a batch.
NOT_ROUTING = frozenset({
    "authorization", "x-api-key", "content-length", "content-type", "connection", "expect",
    "transfer-encoding", "te", "keep-alive", "x-request-id", "traceparent", "tracestate"})


@dataclass(frozen=True, slots=True)
class Caller:
    """What of a request's headers reaches the gateway, as the default engine hands it over:
    the tenant (``service.tenant_header``, recorded with each prediction), the subject
    (``x-subject-id``: erasure and sealing by subject), the sticky rollout key and the headers
    model flags' rules look at; the alias or version it addresses (``x-keel-model-ref``) and
    whether its key may address any (the ``admin`` scope, past ``guards.version_refs``).
    Requests of one caller share a gateway call."""

    tenant: str | None = None
    subject_id: str | None = None
    sticky_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    ref: str | None = None
    any_ref: bool = False

    @classmethod
    def of(cls, headers: Any, tenant_header: str, *, ref: str | None = None,
           any_ref: bool = False) -> Caller | None:
        """The caller of a request with ``headers`` (a mapping, lower-case names) addressing
        ``ref`` (None: the champion, or what routing picks); None: a request that names
        nothing the gateway routes or records by."""
        kept = tuple(sorted([(name, v) for k, v in headers.items()
                             if (name := k.lower()) not in NOT_ROUTING]))
        tenant, subject = headers.get(tenant_header), headers.get("x-subject-id")
        sticky = headers.get("x-keel-user")
        if not (tenant or subject or sticky or kept or ref is not None or any_ref):
            return None
        return cls(tenant, subject, sticky, kept, ref, any_ref)


@dataclass(slots=True)
class Admitted:
    """One request that passed :meth:`BatchPredictor.admit`: its instances, whether it asked
    for class probabilities, and its caller (None: nothing to route or record by)."""

    instances: list[Any]
    probabilities: bool = False
    caller: Caller | None = None
    #: The protocol it came in by, recorded with its predictions (``v1``, ``v2``).
    protocol: str = PROTOCOL
    #: The gateway's contract validator it passed in this process (:meth:`BatchPredictor.admit`):
    #: its batch is not checked again. None: the gateway checks it.
    checked_by: object | None = None


@dataclass(slots=True)
class Answer:
    """One request's share of a batch's :class:`PredictResult`."""

    model: str
    version: int
    predictions: list[Any]
    prediction_ids: list[str]
    answered_by: str
    probabilities: list[list[float]] | None = None
    classes: tuple[Any, ...] | None = None
    warnings: list[ErrorDetail] = field(default_factory=list)


def _ref(admitted: Admitted) -> str | None:
    """The reference (alias or version) ``admitted``'s caller names, if any."""
    return None if admitted.caller is None else admitted.caller.ref


def cut(result: PredictResult, sizes: Sequence[int]) -> list[Answer]:
    """``result`` of one gateway call cut into one :class:`Answer` per request of ``sizes``;
    an output-contract warning goes to the request whose instance it names."""
    predictions = split(result.predictions, sizes)
    ids = split(result.prediction_ids, sizes)
    proba = split(result.probabilities, sizes) if result.probabilities is not None else None
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    answers = []
    for i, n in enumerate(sizes):
        warnings = [_shift(d, starts[i]) for d in result.output_violations
                    if starts[i] <= _row(d) < starts[i] + n]
        answers.append(Answer(result.model, result.version, predictions[i], ids[i],
                              result.answered_by, None if proba is None else proba[i],
                              result.classes, warnings))
    return answers


def _row(detail: ErrorDetail) -> int:
    """The instance an output detail names (``predictions[3].score`` -> 3; -1: none)."""
    head = detail.path.split("]", 1)[0]
    _, _, index = head.partition("[")
    return int(index) if index.isdigit() else -1


def _shift(detail: ErrorDetail, start: int) -> ErrorDetail:
    """``detail`` with its instance index made relative to a request starting at ``start``."""
    row = _row(detail)
    if row < 0:
        return detail
    head, _, rest = detail.path.partition("]")
    prefix = head.split("[", 1)[0]
    return ErrorDetail(f"{prefix}[{row - start}]{rest}", detail.rule, detail.got, detail.message)


def engine_problems(spec: KeelSpec, engine: str, *, checks_keys: bool = False,
                    connection_guards: bool = False) -> list[str]:
    """What of ``spec`` a batching engine cannot enforce (its predict route reads neither a
    request's headers nor its client address): each a sentence; empty when it can serve
    ``spec`` whole. ``checks_keys``: the engine checks API keys on predict itself;
    ``connection_guards``: its front closes a connection without a whole request head in time
    and bounds the connections it holds (a ``guards.header_read_timeout_s`` or
    ``guards.max_connections`` that keel.yaml sets is refused otherwise; the defaults are said
    to be off as the engine starts)."""
    problems = []
    if "header_read_timeout_s" in spec.guards.model_fields_set and not connection_guards:
        problems.append(f"guards.header_read_timeout_s: the {engine} engine's front has no "
                        "deadline for a request head, so it cannot close a slow connection")
    if "max_connections" in spec.guards.model_fields_set and not connection_guards:
        problems.append(f"guards.max_connections: the {engine} engine's front takes every "
                        "connection, so it cannot bound them")
    if spec.guards.require_api_key and not checks_keys:
        problems.append(f"guards.require_api_key: the {engine} engine's predict route does not "
                        "read request headers, so it cannot check an API key")
    if spec.guards.rate_limit is not None:
        problems.append(f"guards.rate_limit: the {engine} engine's predict route does not know "
                        "the caller (key, tenant header or address), so it cannot count per "
                        "caller")
    return problems


def check_engine(resolved: ResolvedSpec, engine: str, *, checks_keys: bool = False,
                 connection_guards: bool = False) -> None:
    """Refuse a keel.yaml whose guards the engine would silently drop
    (:func:`engine_problems`).

    Raises:
        SpecError: a guard needs what the engine cannot see (each one named).
    """
    problems = engine_problems(resolved.spec, engine, checks_keys=checks_keys,
                               connection_guards=connection_guards)
    if problems:
        raise SpecError(
            f"`keel serve --engine {engine}` cannot enforce this keel.yaml: "
            + "; ".join(problems) + ". Serve it with the default engine (`keel serve`), "
            "or turn these guards off.",
            [ErrorDetail(p.split(":", 1)[0], "engine", engine) for p in problems])


def unbatched(resolved: ResolvedSpec) -> ResolvedSpec:
    """``resolved`` with the gateway's own micro-batching off for every model: the engine's
    front forms the batches, so a batch goes to the model in one call, without a second queue."""
    models = [m.model_copy(update={"batching": m.batching.model_copy(update={"enabled": False})})
              for m in resolved.spec.models]
    return resolved.model_copy(update={"spec": resolved.spec.model_copy(
        update={"models": models})})


class BatchPredictor:
    """One model's predictions, requests admitted one by one and predicted a batch at a time.

    Args:
        gateway: The started gateway (its models loaded, its log open).
        model: The model the route serves (its champion answers; no alias nor version).
    """

    def __init__(self, gateway: Gateway, model: str) -> None:
        self.gateway = gateway
        self.model = model
        self._validator = gateway.input_validator  # the very check the gateway runs

    def breaks_contract(self, instances: list[Any]) -> bool:
        """Whether one request's ``instances`` would be refused by the contract check (none,
        or one that breaks the contract); no side effect: :meth:`refuse` records it."""
        return not instances or (self._validator is not None
                                 and bool(self._validator.validate_batch(instances)))

    async def admit(self, instances: list[Any], probabilities: bool = False,
                    caller: Caller | None = None, protocol: str = PROTOCOL) -> Admitted:
        """One request checked alone: admitted (marked as checked by the gateway's own
        validator, so that its batch is not checked again), or refused through the gateway.

        Raises:
            ContractViolation: it breaks the contract (counted and logged, every problem
                named).
        """
        if self.breaks_contract(instances):
            await self.refuse(instances, caller, protocol)
        return Admitted(instances, probabilities, caller, protocol, self._validator)

    async def refuse(self, instances: list[Any], caller: Caller | None = None,
                     protocol: str = PROTOCOL) -> None:
        """Refuse one request that :meth:`breaks_contract`, through the gateway: the
        validation failures are counted and the refusal logged (with its caller's tenant and
        subject), as the default engine does.

        Raises:
            ContractViolation: always, naming every problem with its path.
        """
        await self.gateway.predict(self.model, None if caller is None else caller.ref,
                                   instances, self._context(False, caller, protocol))
        raise ContractViolation("The request breaks the contract.")  # pragma: no cover

    async def overloaded(self, admitted: Admitted) -> Overloaded:
        """An admitted request refused at ``guards.max_concurrency`` (counted and logged with
        its caller, as the default engine refuses one); the error to answer with."""
        ctx = self._context(admitted.probabilities, admitted.caller, admitted.protocol)
        return await self.gateway.overloaded(await self.host(admitted.caller),
                                             admitted.instances, ctx)

    async def host(self, caller: Caller | None = None) -> ModelHost:
        """The loaded host ``caller`` addresses (the champion when it names none), once
        ``guards.version_refs`` allows it: naming a version loads it.

        Raises:
            RefNotAllowedError: the caller may not address its reference (403).
            ModelNotFoundError: no such alias or version (404).
        """
        if caller is None or caller.ref is None:
            return await self.gateway.host(self.model, None)
        self.gateway.check_ref(self.model, caller.ref, self._context(False, caller))
        return await self.gateway.host(self.model, caller.ref)

    async def classes(self, caller: Caller | None = None) -> tuple[Any, ...] | None:
        """The classes of the version ``caller`` addresses (default: the champion); None: it
        gives no class probabilities."""
        return (await self.host(caller)).classes

    async def predict(self, batch: Sequence[Admitted]) -> list[Answer]:
        """Predict every admitted request of ``batch`` in one gateway call per caller and
        per wish for class probabilities (one call when nobody names a tenant, subject or
        routing header); the answers in ``batch``'s order.

        Raises:
            KeelworkError: a gateway call failed (the requests of that call fail alike).
        """
        answers: list[Answer | None] = [None] * len(batch)
        for picked, ctx, rows, sizes in self._calls(batch, isolate=False):
            result = await self.gateway.predict(self.model, _ref(batch[picked[0]]), rows, ctx)
            for i, answer in zip(picked, cut(result, sizes), strict=True):
                answers[i] = answer
        return [a for a in answers if a is not None]

    async def predict_each(self, batch: Sequence[Admitted]) -> list[Answer | Exception]:
        """:meth:`predict`, each request answered or failed on its own: a call of several
        requests that fails in a way one of them may have caused (the model refused an input
        or raised, a strict output contract or a rejecting guard refused one) is made again
        one request at a time, as the default engine's micro-batcher isolates a failure.
        Nothing of the failed call was logged or counted (``RequestContext.isolate``)."""
        out: list[Answer | Exception] = [RuntimeError("unanswered")] * len(batch)
        for picked, ctx, rows, sizes in self._calls(batch, isolate=True):
            try:
                result = await self.gateway.predict(self.model, _ref(batch[picked[0]]), rows,
                                                    ctx)
            except IsolateRequests:
                for i in picked:
                    try:
                        out[i] = (await self.predict([batch[i]]))[0]
                    except Exception as exc:  # this request's own failure
                        out[i] = exc
                continue
            except Exception as exc:  # a failure of the call (a timeout): every request's
                for i in picked:
                    out[i] = exc
                continue
            for i, answer in zip(picked, cut(result, sizes), strict=True):
                out[i] = answer
        return out

    def _calls(self, batch: Sequence[Admitted], *, isolate: bool
               ) -> list[tuple[list[int], RequestContext, list[Any], list[int]]]:
        """The gateway calls of ``batch``: per caller and wish for probabilities, the
        requests' positions, the call's context, its instances and each request's count."""
        groups: dict[tuple[bool, Caller | None, str], list[int]] = {}
        for i, a in enumerate(batch):
            groups.setdefault((a.probabilities, a.caller, a.protocol), []).append(i)
        calls = []
        for (proba, caller, protocol), picked in groups.items():
            rows, sizes = merge([batch[i].instances for i in picked])
            ctx = self._context(proba, caller, protocol)
            checked = {batch[i].checked_by for i in picked}
            if len(checked) == 1:  # every request of the call passed the same check
                ctx.checked_by = checked.pop()
            ctx.isolate = isolate and len(picked) > 1
            calls.append((picked, ctx, rows, sizes))
        return calls

    @staticmethod
    def _context(probabilities: bool, caller: Caller | None = None,
                 protocol: str = PROTOCOL) -> RequestContext:
        ctx = RequestContext(meta={"protocol": protocol})
        if caller is not None:
            ctx.tenant, ctx.subject_id = caller.tenant, caller.subject_id
            ctx.sticky_key, ctx.headers = caller.sticky_key, dict(caller.headers)
            ctx.any_ref = caller.any_ref
        ctx.probabilities = probabilities
        return ctx


@dataclass(slots=True)
class InFlight:
    """Requests in flight across an engine's queues (from joining a queue to their answer),
    and the most allowed at once (``guards.max_concurrency``)."""

    most: int
    count: int = 0


class BatchQueue:
    """Admitted requests of one model, predicted a batch at a time on one event loop (an engine
    whose front hands each request to Python, e.g. granian's RSGI).

    A request joins the queue; a drain takes everything queued (up to ``max_batch_size``
    requests) at once: a lone request goes at once, and under load the batches form by
    themselves. Up to ``max_batches`` batches are in the gateway at a time, so that one batch's
    model call and the next one's wait for the log's commit (``durability: sync``) overlap: the
    log commits the records of batches in flight together. A failure one request may have
    caused fails that request only (:meth:`BatchPredictor.predict_each`); one of the whole
    call (a timeout) fails each request of it alike.

    A request that finds ``in_flight.most`` requests in flight already (every queue sharing
    ``in_flight`` counted) is refused 503 with Retry-After, counted and logged as the default
    engine refuses one (:meth:`BatchPredictor.overloaded`). The count lives in this frame,
    not in a wrapper: a coroutine level more per request cost ~1 µs (measured in-process).

    ``max_batches`` is 8 by default: against 4, 1.05-1.15x the requests a second at 16
    connections and 1.02-1.04x at 64 on one core; 16 gained nothing more (benchmarks/
    RESULTS.md, issue 19, session 19). At most ``max_batches * max_batch_size`` instances are
    in the gateway at once.
    """

    def __init__(self, predictor: BatchPredictor, max_batch_size: int,
                 max_batches: int = 8, in_flight: InFlight | None = None) -> None:
        self.predictor = predictor
        self.in_flight = InFlight(most=2**62) if in_flight is None else in_flight
        self.max_batch_size = max_batch_size
        self.max_batches = max_batches
        self._queue: list[tuple[Admitted, asyncio.Future[Answer]]] = []
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, admitted: Admitted) -> Answer:
        """``admitted``'s answer, from the batch it joined.

        Raises:
            Overloaded: ``in_flight.most`` requests are in flight already (counted, logged).
            KeelworkError: the batch's gateway call failed.
        """
        flight = self.in_flight
        if flight.count >= flight.most:
            raise await self.predictor.overloaded(admitted)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        self._queue.append((admitted, answer))
        if len(self._drains) < self.max_batches:
            drain = loop.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        flight.count += 1
        try:
            return await answer
        finally:
            flight.count -= 1

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:self.max_batch_size]
            del self._queue[:self.max_batch_size]
            try:
                answers = await self.predictor.predict_each([a for a, _ in batch])
            except Exception as exc:  # the batch could not be asked at all
                answers = [exc] * len(batch)
            for (_, waiting), answer in zip(batch, answers, strict=True):
                if waiting.done():  # a request whose client left is dropped
                    continue
                if isinstance(answer, Exception):
                    waiting.set_exception(answer)
                else:
                    waiting.set_result(answer)


__all__ = ["NOT_ROUTING", "PROTOCOL", "Admitted", "Answer", "BatchPredictor", "BatchQueue",
           "Caller", "InFlight", "check_engine", "cut", "engine_problems", "merge", "split",
           "unbatched"]
