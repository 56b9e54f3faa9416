"""The error a keelwork server's answer stands for: :mod:`keelwork.interfaces.http.errors` inverted.

The server renders every error as ``{"error": "...", "details": [{"path", "rule", "got"}]}``
with a status that :func:`~keelwork.interfaces.http.errors.status_for` picks from the error's
class (:data:`~keelwork.interfaces.error_statuses.STATUSES`). The client reads it back into
that class, keeping the message and every detail with its field path (``inputs[1].data[3]``,
``labels[0].label``), so that ``except ContractViolation`` works alike on both sides of the
wire. The status and request are added as a note (``exc.__notes__``); a status no class stands
for is a :class:`~keelwork.errors.RequestRefused` carrying it.
"""

from __future__ import annotations

from typing import Any

import keelwork.errors as errors
from keelwork.errors import (
    ArtifactError,
    AuthError,
    ErrorDetail,
    GuardRefused,
    GuardUnavailable,
    InvalidInputError,
    KeelworkError,
    ModelLoadError,
    ModelRefError,
    OutputContractViolation,
    PredictionError,
    RefNotAllowedError,
    RelabelRefused,
    RequestRefused,
    StoreError,
)
from keelwork.interfaces.error_statuses import class_of

#: The rule of a detail -> the class that raised it, where the rule says more than the status.
_BY_RULE: dict[str, type[KeelworkError]] = {
    "model_ref": ModelRefError, "model_ref_conflict": ModelRefError,
    "version_refs": RefNotAllowedError, "relabel_owner": RelabelRefused,
    "api_key_required": AuthError, "api_key_valid": AuthError, "scope": AuthError,
    "key_exists": AuthError, "key_store": StoreError, "store": StoreError,
    "loads": ModelLoadError, "model_load": ModelLoadError, "unsafe_artifact": ModelLoadError,
    "artifact": ArtifactError, "prediction": PredictionError,
    "output_contract_violation": OutputContractViolation, "invalid_input": InvalidInputError,
    "route": RequestRefused, "method_allowed": RequestRefused,
    "prompt_injection": GuardRefused, "guard_failed": GuardUnavailable,
}

#: A status the HTTP layer answers itself (``auth.py``), beside those of ``STATUSES``.
_HTTP_LAYER: dict[int, type[KeelworkError]] = {401: AuthError}
#: A 400 is also the HTTP layer's refusal of a malformed body: a ModelRefError only by its rule.
_BY_RULE_ONLY = frozenset({400})


def _by_status(status: int) -> type[KeelworkError] | None:
    """The class the server maps ``status`` to (the first one listed of a shared status)."""
    if status in _BY_RULE_ONLY:
        return None
    return _HTTP_LAYER.get(status) or class_of(status)


def _details(body: Any) -> tuple[str, list[ErrorDetail]]:
    if not isinstance(body, dict):
        return "", []
    message = str(body.get("error") or "")
    details = []
    for d in body.get("details") or []:
        if isinstance(d, dict):
            details.append(ErrorDetail(str(d.get("path", "")), str(d.get("rule", "")),
                                       d.get("got"), str(d.get("message", ""))))
    return message, details


def _error_class(name: str) -> Any:
    """An error class of keelwork.errors by name."""
    return getattr(errors, name)


def error_for(status: int, body: Any, headers: dict[str, str] | None = None, *,
              request: str = "") -> KeelworkError:
    """The error a non-2xx answer stands for.

    Args:
        status: The HTTP status.
        body: The decoded JSON body (anything else: the message says the status).
        headers: The answer's headers (``Retry-After`` of a 503).
        request: ``METHOD URL``, for the note.

    Returns:
        The error, of the class the server mapped to ``status``, with the server's message
        and details; raise it.
    """
    message, details = _details(body)
    message = message or f"The server answered {status} without an error body."
    rule = details[0].rule if details else ""
    exc: KeelworkError
    if status == 503 and (rule == "overloaded" or (headers or {}).get("retry-after")) \
            and rule not in ("key_store", "store"):
        retry = (headers or {}).get("retry-after", "1")
        exc = _error_class("Overloaded")(message, float(retry) if retry.isdigit() else 1.0)
    elif status == 504:
        model = details[0].got if details and isinstance(details[0].got, str) else ""
        exc = _error_class("ModelTimeout")(message, model)
    elif status == 409:
        exc = _error_class("TransitionError")(message, details)
    else:
        cls = _BY_RULE.get(rule) or _by_status(status) or RequestRefused
        if cls is RequestRefused:
            exc = RequestRefused(message, details, status=status)
        else:
            exc = cls(message, details)
    exc.add_note(f"HTTP {status} from {request}" if request else f"HTTP {status}")
    return exc


__all__ = ["error_for"]
