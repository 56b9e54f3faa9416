"""Which HTTP status stands for which error class: read one way by the server, back by the client.

:func:`keelwork.interfaces.http.errors.status_for` answers an error with the status of the first
class in :data:`STATUSES` it is an instance of; :mod:`keelwork.interfaces.client_errors` reads a
status back as the first class listed with it. Kept apart from ``interfaces/http`` so that the
client needs neither starlette nor orjson.
"""

from __future__ import annotations

from keelwork.errors import (
    ArtifactError,
    ContractViolation,
    GuardRefused,
    GuardUnavailable,
    InvalidInputError,
    KeelworkError,
    ModelLoadError,
    ModelNotFoundError,
    ModelRefError,
    ModelTimeout,
    NotExplainable,
    Overloaded,
    PredictionError,
    RefNotAllowedError,
    StoreError,
)

#: (error class, status), most specific first: the first ``isinstance`` match wins; an error of
#: no class listed is a 500. Of a shared status, the first class listed is the one the client
#: reads it back as (a 503 is a StoreError unless the answer says overloaded).
STATUSES: tuple[tuple[type[KeelworkError], int], ...] = (
    (ModelNotFoundError, 404),
    (RefNotAllowedError, 403),
    (GuardRefused, 403),
    (ModelRefError, 400),
    (ContractViolation, 422),
    (InvalidInputError, 422),
    (NotExplainable, 422),
    (StoreError, 503),
    (Overloaded, 503),
    (GuardUnavailable, 503),
    (ModelTimeout, 504),
    (PredictionError, 500),
    (ModelLoadError, 500),
    (ArtifactError, 500),
)


def status_of(exc: BaseException) -> int:
    """The status the server answers ``exc`` with (500 for a class not in :data:`STATUSES`)."""
    for cls, status in STATUSES:
        if isinstance(exc, cls):
            return status
    return 500


def class_of(status: int) -> type[KeelworkError] | None:
    """The first class :data:`STATUSES` lists with ``status``, or None."""
    return next((cls for cls, s in STATUSES if s == status), None)


__all__ = ["STATUSES", "class_of", "status_of"]
