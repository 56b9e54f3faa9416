"""``POST /v1/feedback``: ground truth for served predictions, late and in any order.

The body names predictions by the ids the predict routes returned (``prediction_ids`` in the
body, ``x-prediction-ids`` in the headers)::

    {"labels": [{"prediction_id": "0190...", "label": "great", "ts": 1732500000.0}, ...]}

A bare JSON array of the same objects is accepted too. ``ts`` (when the truth was observed,
unix seconds or ISO 8601) is optional. What happens to each label is the label store's rule
(:mod:`keelwork.adapters.stores.label_writes`): a new one is stored, the same one again is a
no-op, a different one replaces the old (which is kept in the history), and a label whose
prediction is not in the log (yet) is kept aside and reported in ``unknown_ids`` (up to
``monitoring.labels.max_unknown_per_request`` new ones per request: the answer counts the rest
in ``unknown_not_kept``; kept ones expire after ``monitoring.labels.unknown_ttl``). A body with
any invalid label writes nothing and answers 422 naming every problem (``labels[3].label``):
a label must be a value of the contract's first output (``contract.outputs``; one of its
categories, a number...), ``ts`` lie between 1970 and one day from now.

Who may send it is the server's choice (``guards.feedback_auth``, see
:func:`keelwork.interfaces.http.auth.feedback_auth`). Labels sent with a key are attributed to
it (stored with the source ``api:key:<id> (<name>)``); a request that replaces labels is
recorded in the audit log (``label.relabel``). With ``guards.relabel: same_labeller`` a label
may only be replaced by the key that set it (or an admin key): anything else answers 403 and
writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keelwork.core.auth import ADMIN, Principal
from keelwork.core.label_check import LabelChecker
from keelwork.errors import ErrorDetail, KeelworkError, RelabelRefused
from keelwork.interfaces.http import openapi
from keelwork.interfaces.http.context import ProvideContext, route_context
from keelwork.interfaces.http.errors import HTTPProblem, response_for
from keelwork.interfaces.http.limits import read_json
from keelwork.spec.contract import FieldSpec
from keelwork.types import AuditSink, LabelStoreProtocol

#: Seconds between two deletions of expired unknown labels.
_EXPIRY_EVERY_S = 60.0

#: Where a feedback router's :class:`FeedbackContext` is kept on the request's state.
_STATE_KEY = "keel_feedback"

#: Labels one request may carry; larger loads belong in ``keel ingest --labels FILE``.
MAX_LABELS = 10_000

_LABEL_SCHEMA = {
    "type": "object",
    "required": ["prediction_id", "label"],
    "properties": {
        "prediction_id": {"type": "string", "description": "An id a predict route returned."},
        "label": {"description": "The ground truth (any JSON value)."},
        "ts": {"description": "When the truth was observed (unix seconds or ISO 8601)."},
    },
}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [
        {"type": "object", "required": ["labels"],
         "properties": {"labels": {"type": "array", "items": _LABEL_SCHEMA,
                                   "maxItems": MAX_LABELS}}},
        {"type": "array", "items": _LABEL_SCHEMA, "maxItems": MAX_LABELS},
    ]}}}}}


def parse_feedback(body: Any) -> list[Any]:
    """The label objects of a feedback body.

    Raises:
        HTTPProblem: the body is neither ``{"labels": [...]}`` nor an array, is empty, or holds
            more than :data:`MAX_LABELS` labels.
    """
    labels = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(labels, list):
        got = type(labels).__name__ if isinstance(body, dict) else type(body).__name__
        raise HTTPProblem(422, "The body must be {\"labels\": [...]} or a JSON array of "
                               f"labels; got {got}.", [ErrorDetail("labels", "type", got)])
    if not labels:
        raise HTTPProblem(422, "The body holds no labels.", [ErrorDetail("labels", "min_items", 0)])
    if len(labels) > MAX_LABELS:
        raise HTTPProblem(413, f"At most {MAX_LABELS} labels per request; got {len(labels)}. "
                               "Load larger files with `keel ingest --labels FILE`.",
                          [ErrorDetail("labels", "max_items", len(labels))])
    return labels


@dataclass(slots=True)
class FeedbackContext:
    """What ``POST /v1/feedback`` works with (see :func:`feedback_router` for each field)."""

    labels: LabelStoreProtocol
    max_body_bytes: int
    relabel: str
    audit: AuditSink | None
    #: The label check of ``contract.outputs``; None: any JSON value.
    check: Callable[[list[Any]], list[Any]] | None
    max_unknown: int | None
    unknown_ttl_s: float | None
    #: keel.yaml's PII policy for label records; None: stored as sent.
    scrub: Callable[[Any], Any] | None = None
    #: ``time.monotonic()`` of the last deletion of expired unknown labels.
    last_expiry: float = field(default=float("-inf"))

    async def expire(self) -> None:
        """Delete unknown labels past their TTL, at most once per ``_EXPIRY_EVERY_S``."""
        now = time.monotonic()
        if self.unknown_ttl_s is None or now - self.last_expiry < _EXPIRY_EVERY_S:
            return
        self.last_expiry = now
        await run_in_threadpool(self.labels.expire_unknown, self.unknown_ttl_s)


def feedback_router(labels: LabelStoreProtocol, *, max_body_bytes: int = 1_048_576,
                    dependencies: Sequence[Any] = (), relabel: str = "any",
                    audit: AuditSink | None = None,
                    outputs: Sequence[FieldSpec] = (), max_unknown: int | None = 1000,
                    unknown_ttl_s: float | None = 7 * 86400.0,
                    scrub: Callable[[Any], Any] | None = None,
                    label_fields: Sequence[str] = ()) -> APIRouter:
    """The router serving ``POST /v1/feedback`` on ``labels``.

    Args:
        labels: The label store (its schema must exist).
        max_body_bytes: Largest body accepted: keel.yaml's ``guards.max_body_bytes`` (the
            app's body-limit middleware enforces the same limit for every route).
        dependencies: FastAPI dependencies run first (e.g. an API-key check).
        relabel: ``any``, or ``same_labeller``: a label may only be replaced by the key that
            set it (or an admin key).
        audit: Where requests that replace labels are recorded, if anywhere.
        outputs: keel.yaml's ``contract.outputs``: each label must be a value of the
            prediction's type (one of a category output's categories, a number for a
            numeric one...); none: any JSON value.
        max_unknown: Labels of unknown ids one request may add to the store
            (``monitoring.labels.max_unknown_per_request``); None: all.
        unknown_ttl_s: Unknown labels not seen again for this long are deleted
            (``monitoring.labels.unknown_ttl``), checked at most once a minute as requests
            come; None: never.
        scrub: keel.yaml's PII policy applied to each label record before it is stored.
        label_fields: Fields a label object may carry beside the outputs (keel.yaml's
            ``fairness.label_fields``: protected attributes sent with the truth).

    Returns:
        The router, for ``create_app(..., routers=[...])``.
    """
    checker = LabelChecker(outputs, label_fields)
    ctx = FeedbackContext(labels, max_body_bytes, relabel, audit,
                          checker.check if checker.active else None, max_unknown,
                          unknown_ttl_s, scrub)
    router = APIRouter(dependencies=[*dependencies, Depends(ProvideContext(_STATE_KEY, ctx))])
    router.add_api_route("/v1/feedback", feedback, methods=["POST"], tags=["Monitoring"],
                         openapi_extra=_BODY, responses=openapi.FEEDBACK_ERRORS)
    return router


async def feedback(request: Request) -> Response:
    """Attach ground truth to prediction ids (idempotent; unknown ids are kept, reported)."""
    ctx = route_context(request, _STATE_KEY, FeedbackContext)
    principal = getattr(request.state, "principal", None)
    keyed = principal if isinstance(principal, Principal) else None
    source = f"api:{keyed.actor}" if keyed is not None else "api"
    own_only = ctx.relabel == "same_labeller" and not (keyed and keyed.allows(ADMIN))
    labels, audit = ctx.labels, ctx.audit
    try:
        records = parse_feedback(await read_json(request, ctx.max_body_bytes))
        if ctx.scrub is not None:
            records = [ctx.scrub(r) for r in records]
        await ctx.expire()
        result = await run_in_threadpool(lambda: labels.submit(
            records, source=source, relabel_own_only=own_only, check_labels=ctx.check,
            max_unknown=ctx.max_unknown))
    except RelabelRefused as exc:
        return response_for(HTTPProblem(403, exc.message, exc.details))
    except (KeelworkError, HTTPProblem) as exc:
        return response_for(exc)
    c = result.counts
    if c.relabelled and audit is not None:
        await run_in_threadpool(lambda: audit.append(
            actor=keyed.actor if keyed is not None else "anonymous", action="label.relabel",
            target="feedback", details={"relabelled": c.relabelled, "received": c.read,
                                        "source": source}))
    return Response(orjson.dumps({
        "received": c.read, "stored": c.ingested, "duplicates": c.duplicates,
        "relabelled": c.relabelled, "unknown": c.unknown, "unknown_ids": result.unknown_ids,
        "unknown_not_kept": result.unknown_not_kept,
    }), media_type="application/json")


__all__ = ["MAX_LABELS", "FeedbackContext", "feedback", "feedback_router", "parse_feedback"]
