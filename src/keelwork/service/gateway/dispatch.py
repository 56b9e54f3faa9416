"""The model call of one request, once the gateway picked its host: contract check, admission,
the call (micro-batched, bounded by ``timeout_ms``, with the fallback), the output contract and
the prediction log records, refused and failed requests included.

:class:`Dispatcher` is the gateway's (:class:`~keelwork.service.gateway.gateway.Gateway`); it
knows nothing of routing (flags, rollouts, aliases): it is handed the host to call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.core.bounds import UNKNOWN_FIELD, metric_field
from keelwork.core.contracts import (
    RecordValidator,
    compile_contract,
    compile_outputs,
    summarise,
)
from keelwork.core.contracts.outputs import rows_of
from keelwork.core.contracts.record import field_reader
from keelwork.core.features.online import OnlineFeatures
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.core.redaction import Redactor
from keelwork.errors import (
    ContractViolation,
    ErrorDetail,
    InvalidInputError,
    IsolateRequests,
    KeelworkError,
    ModelTimeout,
    OutputContractViolation,
    Overloaded,
    PredictionError,
)
from keelwork.service.gateway.context import (
    OOD_GUARD,
    OUTPUT_GUARD,
    PredictResult,
    RequestContext,
    flagged_by,
)
from keelwork.service.gateway.host import ModelHost, ModelTarget
from keelwork.service.gateway.refusals import RefusalLog, clip
from keelwork.service.gateway.routes import RolloutRoute
from keelwork.service.gateway.tokens import TokenMeter
from keelwork.service.injection import INJECTION_GUARD, leak_refusal, refusal
from keelwork.service.redaction import model_sees_redacted
from keelwork.spec.model import KeelSpec, ModelSection
from keelwork.types import PredictionSink

if TYPE_CHECKING:
    from keelwork.service.injection import InjectionScreen
    from keelwork.service.ood import OodGuard

log = logging.getLogger("keelwork.gateway")
#: Contract problems named per request: past them the other instances are only counted.
MAX_PROBLEMS = 1000


class Dispatcher:
    """Runs requests on the host the gateway picked and records every outcome.

    Args:
        spec: The validated spec (contract, guards, storage settings).
        sink: The prediction log.
        metrics: The gateway's Prometheus metrics.
        features: Entity lookups and transforms applied after the contract check; None: none.
        section: The keel.yaml section of a model name (raises ModelNotFoundError).
        host: The loaded host of a model name and reference (for the fallback model).
        redactor: keel.yaml's PII policy (:mod:`keelwork.core.redaction`); None: none.
    """

    def __init__(self, spec: KeelSpec, sink: PredictionSink, metrics: GatewayMetrics,
                 features: OnlineFeatures | None,
                 section: Callable[[str], ModelSection],
                 host: Callable[[str, str | None], Awaitable[ModelHost]],
                 redactor: Redactor | None = None) -> None:
        self._sink = sink
        self.metrics = metrics
        self._features = features
        self._section = section
        self._host = host
        # No declared inputs means no contract to enforce (not "reject every field").
        self._validator = compile_contract(spec.contract) if spec.contract.inputs else None
        self._subject_of = field_reader(spec.contract, spec.contract.subject_field)
        self._outputs = compile_outputs(spec.contract)
        self._outputs_strict = spec.contract.output_policy == "strict"
        self._log_inputs = spec.storage.log_inputs
        self._names = tuple(f.name for f in spec.contract.inputs)
        self._contract_fields = frozenset(self._names)
        self._output_fields = frozenset(f.name for f in spec.contract.outputs)
        self._in_flight, self._max_in_flight = 0, spec.guards.max_concurrency
        #: Token usage of answers, charged at the dated prices (keelwork.service.gateway.tokens).
        self._tokens = TokenMeter(spec.cost, metrics)
        # PII policy (None: nothing personal): what is stored; the model's input if asked.
        self._redact = redactor if redactor is not None and redactor.active else None
        self._model_redacted = model_sees_redacted(spec)
        #: ``guards.out_of_distribution`` (set by the server once its detectors are fitted).
        self.ood: OodGuard | None = None
        #: ``guards.prompt_injection`` (keelwork.service.injection).
        self.injection: InjectionScreen | None = None
        self._refusals = RefusalLog(sink, self._stored, self._subject, self._log_inputs,
                                    spec.storage.max_rejected_input_bytes)

    @property
    def validator(self) -> RecordValidator | None:
        """The compiled input contract every request is checked against (None: none)."""
        return self._validator

    async def shadow(self, route: RolloutRoute, name: str, instances: list[Any],
                           ctx: RequestContext, champion_ids: list[str]) -> None:
        host, window, started = route.challenger, route.window, time.perf_counter()
        try:
            model_input = await self._model_input(instances, host)
            outputs: list[Any] | None = await self._call(host, self._section(name),
                                                         model_input)
            status = "shadow"
        except Exception:  # a failing challenger must never reach the champion's caller
            outputs, status = None, "shadow_error"
        latency_ms = (time.perf_counter() - started) * 1000.0
        broken = (self._check_outputs(host.target, outputs)
                  if outputs is not None and self._outputs is not None else [])
        window.challenger.record("ok" if outputs is not None else "error", latency_ms,
                                 outputs or (), guard=OUTPUT_GUARD if broken else None)
        now = time.time()
        outs: list[Any] = outputs if outputs is not None else [None] * len(instances)
        records = [
            PredictionRecord(
                id=new_prediction_id(), ts=now, model=host.target.name,
                version=host.target.version, tenant=ctx.tenant,
                subject_id=self._subject(ctx, inst),
                inputs=self._stored(inst), outputs=self._stored_output(out),
                latency_ms=latency_ms, model_latency_ms=latency_ms, status=status,
                guard="shadow", answered_by=host.target.label,
                request_meta={**ctx.meta, "shadow_of": cid, "rollout": route.rollout_id})
            for inst, out, cid in zip(instances, outs, champion_ids, strict=True)
        ]
        try:
            await self._sink.write(records)
        except Exception:  # the log's own failures are counted by the log; never raised here
            route.window.shadow_dropped += 1

    async def predict(self, host: ModelHost, name: str, instances: list[Any],
                       ctx: RequestContext) -> PredictResult:
        host.acquire()  # no await since host() returned it: it cannot have been unloaded
        try:
            return await self._predict_on(host, name, instances, ctx)
        finally:
            host.release()

    async def _predict_on(self, host: ModelHost, name: str, instances: list[Any],
                          ctx: RequestContext) -> PredictResult:
        started = time.perf_counter()
        target = host.target
        section = self._section(name)
        if not instances:
            raise ContractViolation("The request holds no instances; send at least one.",
                                    [ErrorDetail("instances", "min_items", 0)])
        validator = self._validator  # not run again on instances it passed already
        details = (validator.validate_batch(instances, limit=MAX_PROBLEMS)
                   if validator is not None and ctx.checked_by is not validator else [])
        if details and self._redact is not None:  # a personal field's value stays out
            details = [self._redact.detail(d) for d in details]
        if details:
            # Labels from the contract only: the client's own keys would be new series.
            counted = Counter((UNKNOWN_FIELD if d.rule == "extra_field" else
                               metric_field(d.path, self._contract_fields), d.rule)
                              for d in details)
            for (label, rule), n in counted.items():
                self.metrics.child(self.metrics.validation_failures, name, label, rule).inc(n)
            self._count(target, "invalid")
            await self._log_refused(target, instances, ctx, "contract", started, details)
            raise ContractViolation(summarise(details), details)
        ood = await self._judge_ood(target, instances, ctx, started)
        injected = await self._judge_injection(target, instances, ctx, started)
        if self._in_flight >= self._max_in_flight:
            raise await self.overloaded(target, instances, ctx, started)
        self._in_flight += 1
        self.metrics.in_flight.inc()
        failed: KeelworkError | None = None
        try:
            model_input = await self._model_input(instances, host)
            canary = self.injection.canary if self.injection is not None else None
            if canary is not None:
                model_input, token = canary.arm(model_input)
            model_started = time.perf_counter()
            answered, outputs, fallback_used = await self._call_with_fallback(
                host, section, model_input)
            proba = (await self._call_proba(answered, section, model_input)
                     if ctx.probabilities else None)
            # The model stage as the request saw it: batching queue + model call (+ fallback).
            model_ms = (time.perf_counter() - model_started) * 1000.0
        except KeelworkError as exc:
            failed = exc
        finally:
            self._in_flight -= 1
            self.metrics.in_flight.dec()
        if failed is not None:
            if ctx.isolate and isinstance(failed, PredictionError | InvalidInputError):
                raise IsolateRequests from failed  # maybe one request's: each alone, then
            self._count(target, "error")
            if self._redact is not None and isinstance(failed, PredictionError | InvalidInputError):
                # The model's own words may quote personal input: not in the answer's body.
                failed.message = self._redact.message(failed.message, instances)
                failed.args = (failed.message, *failed.args[1:])
            if isinstance(failed, InvalidInputError):  # the input's fault: a refusal
                await self.log_failed(target, instances, ctx, started, failed,
                                       guard="input", status="rejected")
            else:
                await self.log_failed(target, instances, ctx, started, failed, guard=(
                    "timeout" if isinstance(failed, ModelTimeout) else None))
            raise failed
        ids = [new_prediction_id() for _ in instances]
        latency_ms = (time.perf_counter() - started) * 1000.0
        now = time.time()
        status = "fallback" if fallback_used else "ok"
        broken = (self._check_outputs(answered.target, outputs, ctx.isolate)
                  if self._outputs is not None else [])
        meta = ctx.meta if not broken else {
            **ctx.meta, "output_violations": [d.as_dict() for d in broken[:50]]}
        cost_error = self._tokens.charge(answered.target.name, answered.target.version,
                                         outputs, now)
        if cost_error is not None:
            meta = {**meta, "cost_error": cost_error}
        refused = bool(broken) and self._outputs_strict
        broken_rows = rows_of(broken, len(instances))
        leaks = (canary.leaked(outputs, token) if canary is not None
                 else [False] * len(instances))
        if any(leaks):
            injected = [a or b for a, b in zip(injected, leaks, strict=True)]
            meta = {**meta, "canary_leaked": [i for i, x in enumerate(leaks) if x]}
            self.metrics.child(self.metrics.guard_hits, INJECTION_GUARD, target.name,
                               self.injection.action if self.injection else "flag"
                               ).inc(sum(leaks))
        withheld = any(leaks) and self.injection is not None and \
            self.injection.action == "reject"
        records = [
            PredictionRecord(
                id=pid, ts=now, model=target.name, version=target.version,
                tenant=ctx.tenant, subject_id=self._subject(ctx, inst),
                inputs=self._stored(inst), outputs=self._stored_output(out),
                latency_ms=latency_ms, model_latency_ms=model_ms,
                status="error" if refused else ("rejected" if withheld else status),
                guard=guards[0] if guards else None, answered_by=answered.target.label,
                request_meta=meta if len(guards) < 2 else {**meta, "guards": guards})
            for i, (pid, inst, out, odd, inj) in enumerate(zip(ids, instances, outputs, ood,
                                                               injected, strict=True))
            for guards in (flagged_by(i in broken_rows, inj, odd),)
        ]
        await self._sink.write(records)
        if withheld:
            self._count(target, "invalid")
            raise leak_refusal(leaks)
        if refused:
            self._count(target, "error")
            raise OutputContractViolation(
                f"The answer of model {answered.target.label} breaks the output contract "
                f"(contract.outputs, output_policy: strict): {summarise(broken)}", broken)
        self._count(target, status)
        self.metrics.child(self.metrics.predictions, target.name,
                           str(target.version)).inc(len(instances))
        self.metrics.child(self.metrics.latency, target.name).observe(
            time.perf_counter() - started)
        return PredictResult(target.name, target.version, outputs, ids,
                             answered.target.label, fallback_used, proba,
                             answered.classes if proba is not None else None, tuple(broken))

    async def _judge_ood(self, target: ModelTarget, instances: list[Any], ctx: RequestContext,
                         started: float) -> list[bool]:
        """Per instance, whether the out-of-distribution guard flags it; with ``reject``, a
        flagged request is refused (422, logged as refused) instead."""
        none = [False] * len(instances)
        if self.ood is None:
            return none
        flags = self.ood.flags(target.name, target.version, instances)
        if not flags or not any(flags):
            return none
        if ctx.isolate and self.ood.action == "reject":
            raise IsolateRequests
        hits = sum(flags)
        self.metrics.child(self.metrics.guard_hits, OOD_GUARD, target.name,
                           self.ood.action).inc(hits)
        if self.ood.action != "reject":
            return flags
        details = [ErrorDetail(f"instances[{i}]", OOD_GUARD, None, "unlike the reference "
                               "data (guards.out_of_distribution)")
                   for i, f in enumerate(flags) if f]
        self._count(target, "invalid")
        await self._log_refused(target, instances, ctx, OOD_GUARD, started, details)
        raise ContractViolation(
            f"{hits} instance(s) unlike the reference data this model was checked on "
            "(guards.out_of_distribution: reject).", details)

    async def _judge_injection(self, target: ModelTarget, instances: list[Any],
                               ctx: RequestContext, started: float) -> list[bool]:
        """Per instance, whether the prompt-injection guard flags it; with ``reject``, a
        flagged request is refused (403 naming the guard, logged as refused) instead."""
        guard = self.injection
        if guard is None:
            return [False] * len(instances)

        def failed(outcome: str) -> None:
            self.metrics.child(self.metrics.guard_errors, INJECTION_GUARD, target.name,
                               outcome).inc()

        try:
            hits = await guard.judge(instances, failed)
        except KeelworkError as exc:
            await self.log_failed(target, instances, ctx, started, exc,
                                  guard=INJECTION_GUARD, status="rejected")
            raise
        flags = [bool(h) for h in hits]
        if not any(flags):
            return flags
        if ctx.isolate and guard.action == "reject":
            raise IsolateRequests
        self.metrics.child(self.metrics.guard_hits, INJECTION_GUARD, target.name,
                           guard.action).inc(sum(flags))
        if guard.action != "reject":
            return flags
        refused = refusal(hits)
        self._count(target, "invalid")
        await self._log_refused(target, instances, ctx, INJECTION_GUARD, started,
                                refused.details)
        raise refused

    def _check_outputs(self, target: ModelTarget, outputs: Sequence[Any],
                       isolate: bool = False) -> list[ErrorDetail]:
        """The output contract's violations by these answers (personal values hidden),
        counted and logged (``isolate`` and a strict policy: not yet, see ``ctx.isolate``)."""
        assert self._outputs is not None
        broken = self._outputs.validate_batch(outputs)
        if broken and isolate and self._outputs_strict:
            raise IsolateRequests
        if broken and self._redact is not None:  # a personal output's value stays out
            broken = [self._redact.detail(d) for d in broken]
        if broken:
            v = str(target.version)
            for d in broken:
                self.metrics.child(self.metrics.output_violations, target.name, v,
                                   metric_field(d.path, self._output_fields), d.rule).inc()
            log.warning("model %s broke the output contract: %s", target.label,
                        summarise(broken))
        return broken

    async def overloaded(self, target: ModelTarget, instances: list[Any], ctx: RequestContext,
                         started: float) -> Overloaded:
        """A request refused at ``guards.max_concurrency``: counted, logged, its error."""
        self.metrics.child(self.metrics.rejected, "concurrency").inc()
        self._count(target, "overloaded")
        busy = Overloaded(f"The server is at its concurrency limit ({self._max_in_flight} "
                          "requests in flight); retry shortly.", retry_after=1.0)
        await self.log_failed(target, instances, ctx, started, busy, guard="concurrency",
                              status="rejected")
        return busy

    def _count(self, target: ModelTarget, status: str) -> None:
        self.metrics.child(self.metrics.requests, target.name, str(target.version), status).inc()

    async def _call(self, host: ModelHost, section: ModelSection,
                    instances: list[Any]) -> list[Any]:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the call in a new task
            async with asyncio.timeout(section.timeout_ms / 1000.0):
                return await host.predict(instances)
        except TimeoutError:
            raise ModelTimeout(
                f"The model {host.target.label} did not answer within "
                f"{section.timeout_ms:g} ms.", host.target.label) from None

    async def _call_proba(self, host: ModelHost, section: ModelSection,
                          instances: list[Any]) -> list[list[float]]:
        if host.classes is None:
            raise InvalidInputError(
                f"The model {host.target.label} has no class probabilities (it is not a "
                "classifier, or its runtime exposes none).",
                [ErrorDetail("outputs", "probabilities", host.target.label)])
        try:
            async with asyncio.timeout(section.timeout_ms / 1000.0):
                proba = await host.predict_proba(instances)
        except TimeoutError:
            raise ModelTimeout(
                f"The model {host.target.label} did not answer within "
                f"{section.timeout_ms:g} ms.", host.target.label) from None
        if proba is None:
            raise InvalidInputError(f"The model {host.target.label} has no class probabilities.",
                                    [ErrorDetail("outputs", "probabilities", host.target.label)])
        return proba

    async def _call_with_fallback(self, host: ModelHost, section: ModelSection,
                                  instances: list[Any]) -> tuple[ModelHost, list[Any], bool]:
        try:
            return host, await self._call(host, section, instances), False
        except InvalidInputError:
            raise  # the input is wrong; another model would not make it right
        except (ModelTimeout, PredictionError, Overloaded) as primary:
            # Overloaded here: a runtime whose remote replicas were lost (Retry-After)
            if section.fallback is None:
                raise
            fb_name, _, fb_alias = section.fallback.partition("@")
            fb_host = await self._host(fb_name, fb_alias or None)
            fb_host.acquire()
            fb_section = self._section(fb_name)
            self.metrics.child(self.metrics.fallbacks, host.target.name,
                               fb_host.target.label).inc()
            try:
                out = await self._call(fb_host, fb_section, instances)
            except KeelworkError:
                raise primary from None
            finally:
                fb_host.release()
            return fb_host, out, True

    def _stored(self, inst: Any) -> Any:
        """What the log keeps of an instance (nothing without ``storage.log_inputs``)."""
        return None if not self._log_inputs else (
            inst if self._redact is None else self._redact.instance(inst))

    def _stored_output(self, out: Any) -> Any:
        return out if self._redact is None else self._redact.output(out)

    async def _model_input(self, instances: list[Any], host: ModelHost) -> list[Any]:
        given = host.in_model_order(self._redact.instances(instances) if self._model_redacted
                                    and self._redact is not None else instances, self._names)
        return given if self._features is None else await self._features.aenrich(given)

    def _subject(self, ctx: RequestContext, instance: Any) -> str | None:
        if ctx.subject_id is not None:
            return clip(ctx.subject_id)
        v = self._subject_of(instance)  # contract.subject_field, in an object or an array
        return None if v is None else clip(str(v))

    async def _log_refused(self, target: ModelTarget, instances: list[Any],
                           ctx: RequestContext, guard: str, started: float,
                           details: list[ErrorDetail]) -> None:
        """Keep refused input where the user can find it (:meth:`RefusalLog.refused`)."""
        await self._refusals.refused(target, instances, ctx, guard, started, details)

    async def log_failed(self, target: ModelTarget, instances: list[Any],
                         ctx: RequestContext, started: float, error: KeelworkError, *,
                         guard: str | None, status: str = "error") -> None:
        """Record a request that got no answer (:meth:`RefusalLog.failed`)."""
        await self._refusals.failed(target, instances, ctx, started, error, guard=guard,
                                    status=status)


__all__ = ["Dispatcher"]
