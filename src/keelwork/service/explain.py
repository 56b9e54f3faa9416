"""``POST /v1/models/{name}:explain``: feature attributions of served predictions.

An :class:`Explainer` answers for new instances -- predicted through the gateway first (the
contract check, guards, routing and the prediction log apply as for ``:predict``), then
explained on the version that answered -- or for logged prediction ids (explained on the
version that answered them, from the logged inputs). Each explanation is stored by its
prediction id (:mod:`keelwork.adapters.stores.explanation_store`) and shown by
``keel log show ID``.

Methods, by model (:mod:`keelwork.core.explain`): exact for scikit-learn linear models and
tree ensembles, else the permutation explainer over the served runtime, bounded by
``explain.max_evaluations`` model rows per instance. The background is a fixed-seed sample of
``monitoring.reference`` (``explain.background_rows``). A request takes at most
``explain.timeout_ms`` (504 past it) and ``explain.budget_per_minute`` bounds the instances a
server explains per minute (429 past it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from keelwork.adapters.stores.explanation_store import ExplanationStore, read_prediction
from keelwork.core.explain.attribution import Explanation, permutation_shap
from keelwork.core.explain.outputs import background_sample, output_fn
from keelwork.core.redaction import Redactor
from keelwork.errors import (
    ErrorDetail,
    ExplainBudgetSpent,
    ModelNotFoundError,
    ModelTimeout,
    NotExplainable,
)
from keelwork.service.gateway.context import RequestContext
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelHost
from keelwork.spec.model import ResolvedSpec

#: Instances (or prediction ids) one request may ask to explain.
MAX_INSTANCES = 100
#: Reference rows read to draw the background from, at most (a uniform sample beyond).
_MAX_READ = 200_000


class Budget:
    """``explain.budget_per_minute``: a token bucket of instances, refilled continuously."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> float | None:
        """Take ``n`` instances; None when allowed, else seconds until they fit."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= n:
                self._tokens -= n
                return None
            return (n - self._tokens) / self.rate


class Explainer:
    """Explains the predictions of one served keel.yaml.

    Args:
        resolved: The keel.yaml (its ``explain`` and ``monitoring.reference``).
        gateway: The serving gateway (predicts new instances, holds the loaded versions).
        store: Where explanations are kept.
    """

    def __init__(self, resolved: ResolvedSpec, gateway: Gateway,
                 store: ExplanationStore, redactor: Redactor | None = None) -> None:
        self.resolved = resolved
        self.redactor = redactor if redactor is not None and redactor.active else None
        self.settings = resolved.spec.explain
        self.gateway = gateway
        self.store = store
        self.budget = Budget(self.settings.budget_per_minute)
        self._background: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ requests
    async def explain_instances(self, name: str, ref: str | None, instances: list[Any],
                                ctx: RequestContext) -> dict[str, Any]:
        """Predict ``instances`` (logged as by ``:predict``), then explain each answer.

        Raises:
            ExplainBudgetSpent: the per-minute budget has no room (429).
            NotExplainable: the model cannot be explained (422).
            ModelTimeout: past ``explain.timeout_ms`` (504).
            KeelworkError: whatever ``:predict`` raises (contract 422, 404, ...).
        """
        self._check_size(len(instances), "instances")
        self._take(len(instances))
        started = time.monotonic()
        result = await self.gateway.predict(name, ref, instances, ctx)
        if result.fallback_used:
            raise NotExplainable(
                f"The model {name!r} did not answer (its fallback {result.answered_by} did); "
                "an answer of the fallback is not explained.",
                [ErrorDetail("model", "fallback_answer", result.answered_by)])
        host = await self.gateway.host(name, str(result.version))
        explained = await self._run(host, instances, result.prediction_ids, started)
        return {"model_name": result.model, "model_version": result.version,
                "predictions": result.predictions, "prediction_ids": result.prediction_ids,
                "explanations": explained}

    async def explain_logged(self, name: str, prediction_ids: list[str],
                             tenant: str | None = None) -> dict[str, Any]:
        """Explain logged predictions of ``name`` from their logged inputs.

        A prediction logged for a tenant is explained only for a request of that tenant
        (others get the 404 of an unknown id).

        Raises:
            ModelNotFoundError: an id is not in the log, or is another model's (404).
            NotExplainable: the log holds no input for an id, or it was not answered (422).
        """
        self._check_size(len(prediction_ids), "prediction_ids")
        self.gateway.model_section(name)
        engine = self.store.engine
        records = await asyncio.to_thread(
            lambda: [read_prediction(engine, pid) for pid in prediction_ids])
        by_version: dict[int, list[int]] = {}
        for i, (pid, rec) in enumerate(zip(prediction_ids, records, strict=True)):
            path = f"prediction_ids[{i}]"
            if rec is None or rec.model != name or (rec.tenant is not None
                                                     and rec.tenant != tenant):
                raise ModelNotFoundError(
                    f"No prediction {pid!r} of the model {name!r} is in the log.",
                    [ErrorDetail(path, "unknown_prediction", pid)])
            if rec.status != "ok" or not isinstance(rec.inputs, dict):
                raise NotExplainable(
                    f"The prediction {pid!r} cannot be explained: "
                    + ("the log holds no input record for it (storage.log_inputs off, or a "
                       "list instance)." if rec.status == "ok" else
                       f"its status is {rec.status!r}, not 'ok'."),
                    [ErrorDetail(path, "explainable_record", rec.status)])
            by_version.setdefault(rec.version, []).append(i)
        self._take(len(prediction_ids))
        started = time.monotonic()
        out: list[dict[str, Any] | None] = [None] * len(prediction_ids)
        for version, idx in by_version.items():
            host = await self.gateway.host(name, str(version))
            done = await self._run(host, [records[i].inputs for i in idx],  # type: ignore[union-attr]
                                   [prediction_ids[i] for i in idx], started)
            for i, d in zip(idx, done, strict=True):
                out[i] = d
        return {"model_name": name, "prediction_ids": prediction_ids,
                "explanations": [d for d in out if d is not None]}

    def _check_size(self, n: int, field: str) -> None:
        if n == 0 or n > MAX_INSTANCES:
            raise NotExplainable(
                f"Send 1 to {MAX_INSTANCES} {field} to explain; got {n}.",
                [ErrorDetail(field, "explain_count", n)])

    def _take(self, n: int) -> None:
        wait = self.budget.take(n)
        if wait is not None:
            raise ExplainBudgetSpent(
                f"The explanation budget (explain.budget_per_minute: "
                f"{self.settings.budget_per_minute} instances) is spent; retry in "
                f"{wait:.1f} s.", retry_after=wait)

    async def _run(self, host: ModelHost, instances: Sequence[Any], ids: Sequence[str],
                   started: float) -> list[dict[str, Any]]:
        timeout = self.settings.timeout_ms / 1000.0
        deadline = started + timeout
        host.acquire()
        try:
            explained = await asyncio.wait_for(
                asyncio.to_thread(self.compute, host, list(instances), deadline),
                timeout=max(0.001, deadline - time.monotonic()))
        except TimeoutError:
            raise ModelTimeout(
                f"Explaining {host.target.label} took longer than explain.timeout_ms "
                f"({self.settings.timeout_ms:g} ms); explain fewer instances or raise it.",
                host.target.label) from None
        finally:
            host.release()
        bodies = [e.to_dict() for e in explained]
        kept = bodies if self.redactor is None else [  # what keel.yaml's PII policy allows
            self.redactor.explanation(b, inst) for b, inst in zip(bodies, instances, strict=True)]
        await asyncio.to_thread(self.store.put, [
            (pid, host.target.name, host.target.version, body)
            for pid, body in zip(ids, kept, strict=True)])
        return [{"prediction_id": pid, **body} for pid, body in zip(ids, bodies, strict=True)]

    # ------------------------------------------------------------------ computing
    def background(self) -> list[dict[str, Any]]:
        """The background records: a fixed-seed sample of ``monitoring.reference``.

        Raises:
            NotExplainable: keel.yaml names no reference.
        """
        if self._background is not None:
            return self._background
        reference = self.resolved.spec.monitoring.reference
        if reference is None:
            raise NotExplainable(
                "Explanations need background data: set monitoring.reference in keel.yaml "
                "(its rows' mean output is the expected value attributions start from).",
                [ErrorDetail("monitoring.reference", "explain_background", None)])
        from keelwork.adapters.data import read_table

        table = read_table(self.resolved.resolve_path(reference))
        if table.num_rows > self.settings.background_rows:
            table = table.take(background_sample(table.num_rows, self.settings.background_rows))
        fields = [f.name for f in self.resolved.spec.contract.inputs]
        if fields:
            table = table.select([c for c in fields if c in table.column_names])
        else:
            label = self.resolved.spec.monitoring.labels.column
            table = table.select([c for c in table.column_names if c != label])
        rows: list[dict[str, Any]] = list(table.to_pylist())
        if not rows:
            raise NotExplainable(
                f"monitoring.reference ({reference}) holds no rows: explanations need "
                "background data.", [ErrorDetail("monitoring.reference", "explain_background",
                                                  reference)])
        self._background = rows
        return rows

    def compute(self, host: ModelHost, instances: list[Any], deadline: float
                ) -> list[Explanation]:
        """Explanations of ``instances`` on ``host`` (blocking; in a worker thread).

        Raises:
            NotExplainable: no method applies.
            TimeoutError: the deadline passed (the permutation explainer checks it).
        """
        runtime = host.runtime
        hook = getattr(runtime, "explain_input", None)
        field = getattr(getattr(runtime, "config", None), "text_field", None) or self._text_field()
        if callable(hook):
            model, x, names, mode = hook(instances)
            if mode == "text":
                from keelwork.core.explain.text import explain_linear_text

                exact = explain_linear_text(model, x)
                return exact if exact is not None else self._occlusion(
                    host, instances, list(x), field, deadline)
            background = self.background()
            _, bx, _, _ = hook(background)
            from keelwork.core.explain.exact import explain_exact

            exact = explain_exact(model, x, bx, names)
            if exact is not None:
                return exact
            return self._permutation(host, instances, background, deadline)
        if field is not None:  # a text model the runtime cannot open: occlusion
            at = self._position(field)
            texts = [inst if isinstance(inst, str) else
                     inst.get(field) if isinstance(inst, dict) else
                     inst[at] if isinstance(inst, list) and 0 <= at < len(inst) else None
                     for inst in instances]
            if all(isinstance(t, str) for t in texts):
                return self._occlusion(host, instances, texts, field,  # type: ignore[arg-type]
                                       deadline, at)
        return self._permutation(host, instances, self.background(), deadline)

    def _text_field(self) -> str | None:
        """keel.yaml's text input when the model reads text, not numbers: its one
        ``type: text`` field with no numeric input beside it (None otherwise: the
        permutation explainer takes records of features)."""
        inputs = self.resolved.spec.contract.inputs
        texts = [f.name for f in inputs if f.type == "text"]
        numeric = [f for f in inputs if f.type in ("float", "integer")]
        return texts[0] if len(texts) == 1 and not numeric else None

    def _position(self, field: str) -> int:
        """Where ``field`` sits in an array instance (one value per contract input, in
        contract order); -1 when it cannot be read from one."""
        names = [f.name for f in self.resolved.spec.contract.inputs]
        return names.index(field) if field in names else -1

    def _occlusion(self, host: ModelHost, instances: list[Any], texts: list[str],
                   field: str | None, deadline: float, at: int = -1) -> list[Explanation]:
        from keelwork.core.explain.text import occlusion

        out: list[Explanation] = []
        for inst, text in zip(instances, texts, strict=True):
            score, output, cls = self._output_fn(host, inst)

            def f(batch: list[str], inst: Any = inst, score: Any = score
                  ) -> np.ndarray[Any, Any]:
                if isinstance(inst, dict) and field is not None:
                    return np.asarray(score([{**inst, field: t} for t in batch]), dtype=float)
                if isinstance(inst, list) and 0 <= at < len(inst):  # the array, text replaced
                    return np.asarray(score([[*inst[:at], t, *inst[at + 1:]] for t in batch]),
                                      dtype=float)
                return np.asarray(score(batch), dtype=float)

            keys, values, expected, value, evals, spans = occlusion(
                f, text, max_evaluations=self.settings.max_evaluations, deadline=deadline)
            out.append(Explanation(features=keys, values=values, expected_value=expected,
                                   output_value=value, output=output, output_class=cls,
                                   method="occlusion", evaluations=evals,
                                   extra={"spans": spans}))
        return out

    def _output_fn(self, host: ModelHost, inst: Any) -> tuple[Any, str, Any]:
        return output_fn(host.runtime, host.target.label, inst)

    def _permutation(self, host: ModelHost, instances: list[Any],
                     background: list[dict[str, Any]], deadline: float) -> list[Explanation]:
        if not all(isinstance(i, dict) for i in instances):
            raise NotExplainable(
                f"The model {host.target.label} has no exact explainer, and the permutation "
                "explainer needs records (JSON objects), not lists.",
                [ErrorDetail("instances", "explain_records", None)])
        fields = [f.name for f in self.resolved.spec.contract.inputs] or list(instances[0])
        features = [f for f in fields if f in background[0]]
        out: list[Explanation] = []
        for inst in instances:
            f, output, cls = self._output_fn(host, inst)
            values, expected, value, evals = permutation_shap(
                f, inst, background, features, max_evaluations=self.settings.max_evaluations,
                deadline=deadline)
            out.append(Explanation(features=features, values=values, expected_value=expected,
                                   output_value=value, output=output, output_class=cls,
                                   method="permutation", evaluations=evals))
        return out




def open_explainer(resolved: ResolvedSpec, gateway: Gateway, engine: Any,
                   redactor: Redactor | None = None) -> Explainer:
    """The explainer of a server (its store table created); ``redactor``: the server's PII
    policy, applied to the explanations it stores."""
    store = ExplanationStore(engine, resolved.spec.explain.max_stored)
    store.ensure_schema()
    return Explainer(resolved, gateway, store, redactor)


__all__ = ["MAX_INSTANCES", "Budget", "Explainer", "open_explainer"]
