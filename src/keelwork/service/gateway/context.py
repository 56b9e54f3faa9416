"""What a request brings to the gateway and what it gets back: :class:`RequestContext` and
:class:`PredictResult`, protocol-agnostic (the HTTP layer builds the one and renders the other)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keelwork.errors import ErrorDetail
from keelwork.service.injection import INJECTION_GUARD

#: The guard recorded on answers that broke the output contract.
OUTPUT_GUARD = "output_contract"
#: The guard name of the out-of-distribution guard (log records, metrics, error details).
OOD_GUARD = "out_of_distribution"


def flagged_by(output: bool, injected: bool, odd: bool) -> list[str]:
    """The guards that flagged one answered row, the one its record's ``guard`` names first
    (the output contract, then prompt injection, then out of distribution). A row with two
    or more also lists them all in its ``request_meta["guards"]``, so that what selects by
    guard (``review.guards``) finds it under each."""
    if not (output or injected or odd):  # the common case, per answered row
        return []
    return [g for g, hit in ((OUTPUT_GUARD, output), (INJECTION_GUARD, injected),
                             (OOD_GUARD, odd)) if hit]


@dataclass(frozen=True, slots=True)
class PredictResult:
    model: str
    version: int
    predictions: list[Any]
    prediction_ids: list[str]
    answered_by: str
    fallback_used: bool = False
    #: Class probabilities per instance, when asked for (``RequestContext.probabilities``).
    probabilities: list[list[float]] | None = None
    #: The classes of ``probabilities``' columns.
    classes: tuple[Any, ...] | None = None
    #: Where the answers broke the output contract (``output_policy: warn``; paths
    #: ``predictions[i].field``); empty when they kept it.
    output_violations: tuple[ErrorDetail, ...] = ()


@dataclass(slots=True)
class RequestContext:
    tenant: str | None = None
    subject_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: Keeps a caller on one rollout arm (the ``x-keel-user`` header); else the subject id.
    sticky_key: str | None = None
    #: Request headers (lower-case names), for model flags' header rules.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The caller may address any alias or version, whatever ``guards.version_refs`` says
    #: (an API key with the ``admin`` scope).
    any_ref: bool = False
    #: Also compute class probabilities (a classifier's ``predict_proba``; not batched).
    probabilities: bool = False
    #: The contract validator the instances already passed, in this process (an engine that
    #: checks each request alone before it joins a batch): the gateway skips its own check
    #: only when this is its validator (:attr:`Gateway.input_validator`), never otherwise.
    checked_by: object | None = None
    #: The instances are several requests' (an engine's batch): a failure one request's
    #: instances may have caused (the model refused an input or raised; a strict output
    #: contract broken) is raised as :class:`~keelwork.errors.IsolateRequests` before anything
    #: is logged or counted, so that the engine asks again one request at a time.
    isolate: bool = False



__all__ = ["OUTPUT_GUARD", "PredictResult", "RequestContext"]
