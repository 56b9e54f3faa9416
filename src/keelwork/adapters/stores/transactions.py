"""Connections and retried transactions shared by the stores.

One rule for every store: a database error becomes a :class:`~keelwork.errors.StoreError` that
names the store, what it was doing and the URL (password hidden); a write that meets a busy
database or a uniqueness race is retried with jittered exponential backoff. The ingestion ledger
retries more widely (:func:`is_transient`: lost connections and restarts too).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from keelwork.errors import StoreError

T = TypeVar("T")

#: Attempts of a retried transaction (busy database or uniqueness race).
ATTEMPTS = 30
_BUSY_WORDS = ("locked", "busy", "deadlock", "serializ")


def is_busy(exc: OperationalError) -> bool:
    """True when the database refused because of other writers (worth retrying)."""
    text = str(exc.orig).lower()
    return any(word in text for word in _BUSY_WORDS)


#: Words in an OperationalError that mean retrying cannot help.
_PERMANENT = ("no such table", "no such column", "syntax error", "readonly database",
              "read-only", "permission denied", "authentication failed", "does not exist",
              "not a database", "malformed", "disk is full", "unable to open database",
              "no password supplied", "undefined")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the transaction that raised ``exc`` may succeed.

    Args:
        exc: An exception from SQLAlchemy.

    Returns:
        True for lost or refused connections, pool time-outs, locks, deadlocks and
        serialization failures; False for everything else.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig if exc.orig is not None else exc).lower()
        return not any(word in text for word in _PERMANENT)
    return False



def store_error(store: str, what: str, engine: Engine, exc: SQLAlchemyError) -> StoreError:
    """``The <store> failed while <what> (<url>): <first line of the driver's message>``."""
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()[0]
    url = engine.url.render_as_string(hide_password=True)
    return StoreError(f"The {store} failed while {what} ({url}): {detail}")


@contextmanager
def connection(engine: Engine, store: str, what: str) -> Iterator[Connection]:
    """A connection whose database errors surface as StoreError."""
    try:
        with engine.connect() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise store_error(store, what, engine, exc) from None


def retrying_transaction(engine: Engine, work: Callable[[Connection], T], *, store: str,
                         what: str, attempts: int = ATTEMPTS) -> T:
    """Run ``work`` in a transaction, again on a uniqueness conflict or a busy database.

    Raises:
        StoreError: any other database error, or still busy after ``attempts``.
    """
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (IntegrityError, OperationalError) as exc:
            if isinstance(exc, OperationalError) and not is_busy(exc):
                raise store_error(store, what, engine, exc) from None
            if attempt == attempts - 1:
                raise store_error(store, what, engine, exc) from None
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2 ** attempt)))
        except SQLAlchemyError as exc:
            raise store_error(store, what, engine, exc) from None
    raise AssertionError("unreachable")  # pragma: no cover
