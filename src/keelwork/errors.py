"""The keelwork error hierarchy.

Every error keelwork raises on purpose derives from :class:`KeelworkError`; each leaf also
inherits the builtin a caller would naturally catch, so ``except ValueError`` keeps working::

    KeelworkError
    ├── SpecError (ValueError)                 keel.yaml is invalid; carries every problem
    │   └── TransitionError                    an action the rollout's phase does not allow
    ├── ContractViolation (ValueError)         input broke the data contract; carries details
    ├── MissingExtraError (ImportError)        an optional dependency is not installed
    ├── RegistryError
    │   ├── ModelNotFoundError (LookupError)   unknown model, version or alias
    │   ├── ModelRefError (ValueError)         a malformed model reference (``name@a@b``)
    │   └── ArtifactError (ValueError)         missing / unreadable / mismatched artifact
    ├── ModelLoadError (RuntimeError)          a runtime could not load an artifact
    │   └── UnsafeArtifactError (PermissionError)  pickle without ``allow_unsafe_pickle``
    ├── InvalidInputError (ValueError)         a runtime rejected the shape/type of a batch
    ├── PredictionError (RuntimeError)         the model raised while predicting
    │   └── OutputContractViolation            its answer broke the output contract (strict)
    ├── BatchSizeError (ValueError)            a batch answered more or fewer outputs than inputs
    ├── ModelTimeout (TimeoutError)            the model did not answer within its ``timeout_ms``
    ├── Overloaded (RuntimeError)              the concurrency limit is reached (retry later)
    ├── DataFileError (ValueError)             a data file is unreadable / malformed (file, line)
    ├── MonitorError (ValueError)              profiles/drift: mismatched layouts, unknown method
    ├── StoreError (ConnectionError)           the metadata / prediction store failed
    │   └── JobConflict                        another process is ingesting the same file
    ├── NotificationError (ConnectionError)    an alert sink (webhook, SMTP, Slack) is down
    ├── InvalidId (ValueError)                 a value that cannot be an id (ingestion)
    ├── AuditError (ValueError)                an audit entry cannot be recorded as given
    ├── AuthError (ValueError)                 a malformed scope, API key name or unknown key id
    ├── RefNotAllowedError (PermissionError)   a model reference clients may not address
    ├── RelabelRefused (PermissionError)       a label set by one labeller replaced by another
    ├── PiiConfigError (ValueError)            PII redaction set up wrong: an unknown entity or
    │                                          mode, a plug-in that cannot load, a short key
    ├── PiiScanFailed (RuntimeError)           a text could not be scanned (too long, too slow,
    │                                          a recogniser raised): redact it whole
    ├── GuardRefused (PermissionError)         an input guard (prompt_injection) refused a
    │                                          request; the message never quotes the input
    ├── GuardUnavailable (RuntimeError)        an input guard failed (raised or timed out) and
    │                                          fails closed: the request is refused, retry
    ├── RequestRefused (ValueError)            a server refused a request no other class names
    ├── NotExplainable (ValueError)            a model (or input) no explainer can attribute
    ├── ExplainBudgetSpent (RuntimeError)      explain.budget_per_minute is spent (retry later)
    ├── DrillUnavailable (RuntimeError)        a drill of ``keel check`` cannot run here (no
    │                                          scratch copy, no tool, no data): not checked
    ├── EngineError (RuntimeError)             a serving engine (a Ray cluster) cannot be reached
    │                                          or cannot hold the replicas asked for
    └── BuildError (ValueError)                a container build context cannot be written (an
                                               --out folder in use, a lock that does not resolve)

Messages name the thing, the rule and what was got: "The 'age' field must be >= 0; got -3."
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One machine-readable problem: where it is, which rule it broke and what was got."""

    path: str
    rule: str
    got: Any = None
    message: str = ""
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "rule": self.rule, "got": self.got}
        if self.message:
            out["message"] = self.message
        if self.line is not None:
            out["line"] = self.line
        return out


class KeelworkError(Exception):
    """Root of every error keelwork raises on purpose."""

    def __init__(self, message: str, details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[ErrorDetail] = list(details or [])


class SpecError(KeelworkError, ValueError):
    """keel.yaml (or another spec document) is invalid; ``details`` lists every problem."""


class TransitionError(SpecError):
    """An action that the rollout's phase does not allow (e.g. promote an aborted rollout)."""


class ContractViolation(KeelworkError, ValueError):
    """Input data broke the data contract; ``details`` names each bad field."""


class MissingExtraError(KeelworkError, ImportError):
    """An optional dependency is missing; the message says which extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'keelwork[{extra}]'"
        )
        self.package = package
        self.extra = extra


class RegistryError(KeelworkError):
    """The model registry refused an operation."""


class ModelNotFoundError(RegistryError, LookupError):
    """No model, version or alias by that name."""


class ModelRefError(RegistryError, ValueError):
    """A model reference is malformed (not ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``)."""


class ArtifactError(RegistryError, ValueError):
    """An artifact is missing, unreadable or does not match its recorded hash."""


class ModelLoadError(KeelworkError, RuntimeError):
    """A runtime could not load a model artifact."""


class UnsafeArtifactError(ModelLoadError, PermissionError):
    """Loading this artifact would execute arbitrary code and the user has not opted in."""


class InvalidInputError(KeelworkError, ValueError):
    """A runtime cannot turn the given batch into model input."""


class PredictionError(KeelworkError, RuntimeError):
    """The model itself raised while predicting."""


class OutputContractViolation(PredictionError):
    """The model's answer broke the output contract (``contract.output_policy: strict``);
    ``details`` names each bad output field. A server fault (500), not the caller's."""


def named_by_model(label: str, exc: Exception) -> Exception:
    """What a failed model call raises: a :class:`PredictionError` named with the served
    version ``label`` (its words and details kept), another keelwork error as it is, any other
    exception as the model's own failure (its type and message)."""
    if isinstance(exc, PredictionError):
        return PredictionError(f"The model {label} failed: {exc.message}", exc.details)
    if isinstance(exc, KeelworkError):
        return exc
    return PredictionError(f"The model {label} raised {type(exc).__name__}: {exc}")


class BatchSizeError(KeelworkError, ValueError):
    """A batched model call returned a different number of outputs than it was given inputs."""


class ModelTimeout(KeelworkError, TimeoutError):
    """The model did not answer within its ``timeout_ms``.

    Args:
        message: What timed out, and the bound.
        model: The model's label (``name:version``) that did not answer.
    """

    def __init__(self, message: str, model: str) -> None:
        super().__init__(message)
        self.model = model


class IsolateRequests(KeelworkError):
    """A batch of several requests failed in a way one of them may have caused; nothing of
    it was logged or counted: ask again one request at a time (never reaches a client)."""

    def __init__(self) -> None:
        super().__init__("A batch of several requests failed; ask each again alone.")


class Overloaded(KeelworkError, RuntimeError):
    """The concurrency limit is reached; retry after ``retry_after`` seconds.

    Args:
        message: Which limit, and what to do.
        retry_after: Seconds after which a retry is worth it.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DataFileError(KeelworkError, ValueError):
    """A data file (CSV, Parquet, JSONL) cannot be read; names the file, line/row and column."""

    def __init__(self, message: str, *, path: str, line: int | None = None,
                 column: str | None = None, details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message, details)
        self.path = path
        self.line = line
        self.column = column


class MonitorError(KeelworkError, ValueError):
    """Monitoring refused an input: profiles of different layouts, an unknown drift method, ..."""


class StoreError(KeelworkError, ConnectionError):
    """The metadata / prediction store failed or is unreachable."""


class EngineError(KeelworkError, RuntimeError):
    """A serving engine (``keel serve --engine ray``) cannot be reached, cannot hold the replicas
    asked for, or did not start the application."""


class JobConflict(StoreError):
    """Another process advanced the same job's checkpoint: it is ingesting the same file."""


class NotificationError(KeelworkError, ConnectionError):
    """An alert notification was not delivered: its sink (webhook, SMTP server, Slack-compatible
    endpoint) is unreachable or refused it. The delivery is kept and retried."""


class InvalidId(KeelworkError, ValueError):
    """An id value that cannot be an id; ``rule`` is ``type``, ``min_length`` or ``max_length``."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class AuditError(KeelworkError, ValueError):
    """An audit entry cannot be recorded as given (e.g. its details are not plain JSON)."""


class AuthError(KeelworkError, ValueError):
    """An API-key operation was refused: unknown scope, malformed name, unknown key id."""


class RefNotAllowedError(KeelworkError, PermissionError):
    """A client addressed an alias or version that ``guards.version_refs`` keeps from it."""


class RelabelRefused(KeelworkError, PermissionError):
    """A stored label may only be replaced by whoever set it (``guards.relabel``); carries a
    detail per refused label."""


class PiiConfigError(KeelworkError, ValueError):
    """PII redaction set up wrong: an unknown entity name, a ``keelwork.pii_recognisers``
    plug-in that cannot be loaded, an unknown mode, a missing or short pseudonym key.
    ``entity`` is the entity name at fault, if any (the spec layer adds the keel.yaml line)."""

    def __init__(self, message: str, *, entity: str | None = None) -> None:
        super().__init__(message)
        self.entity = entity


class PiiScanFailed(KeelworkError, RuntimeError):
    """A text could not be scanned for PII: longer than the size budget, slower than the time
    budget, or a recogniser raised. The caller stores the field redacted whole. ``reason`` is
    ``too_long``, ``timeout`` or ``recogniser_error``; the message never quotes the text."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The text could not be scanned for PII ({reason}); it is redacted "
                         "whole.")
        self.reason = reason


class GuardRefused(KeelworkError, PermissionError):
    """An input guard refused a request (``guards.prompt_injection: {action: reject}``).
    ``guard`` names it; neither the message nor the details quote the input."""

    def __init__(self, message: str, details: list[ErrorDetail] | None = None, *,
                 guard: str = "") -> None:
        super().__init__(message, details)
        self.guard = guard


class GuardUnavailable(KeelworkError, RuntimeError):
    """An input guard raised or exceeded its time budget and keel.yaml has it fail closed:
    the request is refused (503) rather than answered unchecked."""


class RequestRefused(KeelworkError, ValueError):
    """A keelwork server refused a request for a reason no other class names: malformed JSON
    (400), a wrong method (405), a body too large (413) or too slow (408), ... Raised by
    :class:`keelwork.Client`; ``status`` is the HTTP status, ``details`` the server's."""

    def __init__(self, message: str, details: list[ErrorDetail] | None = None, *,
                 status: int = 400) -> None:
        super().__init__(message, details)
        self.status = status


class NotExplainable(KeelworkError, ValueError):
    """No explainer can attribute this model's output (a text model, a non-numeric output
    without class probabilities, no background data): ``POST :explain`` answers 422."""


class ExplainBudgetSpent(KeelworkError, RuntimeError):
    """``explain.budget_per_minute`` is spent; retry after ``retry_after`` seconds (429).

    Args:
        message: The budget and what to do.
        retry_after: Seconds until the budget has room again.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BuildError(KeelworkError, ValueError):
    """``keel build`` cannot write the build context: the output folder is in use, the
    version cannot be packaged (a ``module:function`` model), or its lock does not resolve."""


class DrillUnavailable(KeelworkError, RuntimeError):
    """A drill of ``keel check`` cannot run here (no scratch copy, a tool missing, no data to
    send): the item is reported as not checked, with this message as the reason."""


__all__ = [
    "ArtifactError",
    "AuditError",
    "AuthError",
    "BatchSizeError",
    "BuildError",
    "ContractViolation",
    "DataFileError",
    "DrillUnavailable",
    "EngineError",
    "ErrorDetail",
    "ExplainBudgetSpent",
    "GuardRefused",
    "GuardUnavailable",
    "InvalidId",
    "InvalidInputError",
    "IsolateRequests",
    "JobConflict",
    "KeelworkError",
    "MissingExtraError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelRefError",
    "ModelTimeout",
    "MonitorError",
    "NotExplainable",
    "Overloaded",
    "PiiConfigError",
    "PiiScanFailed",
    "PredictionError",
    "RefNotAllowedError",
    "RegistryError",
    "RelabelRefused",
    "RequestRefused",
    "SpecError",
    "StoreError",
    "UnsafeArtifactError",
    "named_by_model",
]
