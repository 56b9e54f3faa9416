"""KServe V1 ``:predict`` bodies parsed and answered a batch at a time, for an engine whose HTTP
front forms the batches (``keel serve --engine mosec``; :mod:`keelwork.service.mosec_serving`).

:meth:`BatchAnswers.admit` parses ONE request's raw body as the V1 route does (JSON, a repeated
key refused, ``instances`` or ``inputs``, ``parameters.probabilities``) and has the service check
it against the contract; a request refused is answered its own status and keelwork's JSON error
body, every problem named with its path. :meth:`BatchAnswers.answer` predicts the admitted
requests of a batch in one call and renders each request's answer as the V1 route does
(``predictions``, ``model_name``, ``model_version``, ``prediction_ids``, ``answered_by``,
``probabilities`` when asked for, ``warnings`` when the output contract was broken).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keelwork.errors import ErrorDetail, KeelworkError
from keelwork.interfaces.http import jsonbody
from keelwork.interfaces.http.errors import HTTPProblem, response_for
from keelwork.interfaces.http.protocols import (
    output_warnings,
    parse_v1,
    parse_v1_parameters,
    proba_records,
)
from keelwork.service.batch_predict import Admitted, Answer

if TYPE_CHECKING:
    from keelwork.service.mosec_serving import BatchWorker

#: The status and body of a refusal, or of a request passed on (200 and its admitted item).
Outcome = tuple[int, Any]


class BatchAnswers:
    """One model's V1 predict route, served in the engine's two stages.

    Args:
        worker: The worker process's server.
        model: The model's name (for messages).
    """

    def __init__(self, worker: BatchWorker, model: str) -> None:
        self.worker = worker
        self.model = model

    def admit(self, body: bytes) -> Outcome:
        """``(200, Admitted)``, or ``(status, error body)`` for a request refused alone."""
        try:
            instances, probabilities = parse(body)
            if probabilities and self.worker.classes() is None:
                raise no_probabilities(self.model)
            return 200, self.worker.admit(instances, probabilities)
        except (KeelworkError, HTTPProblem) as exc:
            return self.refused(exc)

    def answer(self, batch: list[Admitted]) -> tuple[int, list[bytes]]:
        """``(200, one body per request)``, or ``(status, [error body])`` when the batch's
        model call failed (every request of it answered alike)."""
        try:
            answers = self.worker.predict(batch)
        except KeelworkError as exc:
            status, body = self.refused(exc)
            return status, [body]
        return 200, [render(a) for a in answers]

    def refused(self, exc: KeelworkError | HTTPProblem) -> tuple[int, bytes]:
        """The status and JSON error body of ``exc``, as the HTTP app answers it."""
        return refusal(exc, self.worker.project_dir)


def parse(body: bytes) -> tuple[list[Any], bool]:
    """One V1 body -> its instances, and whether it asks for class probabilities.

    Raises:
        HTTPProblem: not JSON, a repeated key, no instances, an unknown parameter (400/422).
    """
    parsed = jsonbody.loads(body)
    return parse_v1(parsed), parse_v1_parameters(parsed)


def no_probabilities(model: str) -> HTTPProblem:
    """The 400 of a request asking for the probabilities of a model without classes."""
    return HTTPProblem(400, f"The model {model!r} has no class probabilities (it is not a "
                       "classifier); drop parameters.probabilities.",
                       [ErrorDetail("parameters.probabilities", "probabilities", True)])


def refusal(exc: KeelworkError | HTTPProblem, project_dir: Path | None) -> tuple[int, bytes]:
    """The status and JSON error body of ``exc``, server paths hidden."""
    response = response_for(exc, project_dir)
    return response.status_code, bytes(response.body)


def render(answer: Answer) -> bytes:
    """One request's V1 answer body."""
    out: dict[str, Any] = {
        "predictions": answer.predictions, "model_name": answer.model,
        "model_version": answer.version, "prediction_ids": answer.prediction_ids,
        "answered_by": answer.answered_by}
    if answer.probabilities is not None and answer.classes is not None:
        out["probabilities"] = proba_records(answer.probabilities, answer.classes)
    if answer.warnings:
        out["warnings"] = output_warnings(answer.warnings)
    return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


__all__ = ["BatchAnswers", "Outcome", "no_probabilities", "parse", "refusal", "render"]
