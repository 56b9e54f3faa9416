"""Grouped reads of the prediction log for the dashboard's traffic rollup, and which of the
optional tables a store holds.

:func:`traffic_rows` reads one time range of ``predictions`` (the ``ts`` index bounds it)
grouped by model, version, minute, status, guard and latency bin, so that a day of a million
requests comes back as a few thousand rows. The latency bin is computed in SQL by a balanced
``CASE`` over the bin edges (a handful of comparisons per row, the same SQL on SQLite and
PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Integer, case, cast, func, inspect, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnElement

from keelwork.adapters.stores.prediction_store import predictions, store_error

#: One grouped row: model, version, minute start (unix s), status, guard, latency bin, count.
TrafficRow = tuple[str, int, int, str, str | None, int, int]


def _bin(column: Any, edges: Sequence[float], lo: int, hi: int) -> Any:
    """Index ``i`` in ``[lo, hi]`` of the first edge with ``column <= edges[i]`` (``hi`` ==
    ``len(edges)``: past the last edge), as a balanced CASE."""
    if lo >= hi:
        return literal(lo)
    mid = (lo + hi) // 2
    return case((column <= edges[mid], _bin(column, edges, lo, mid)),
                else_=_bin(column, edges, mid + 1, hi))


def _minute(engine: Engine) -> ColumnElement[Any]:
    ts = predictions.c.ts
    if engine.dialect.name == "postgresql":
        return cast(func.floor(ts / 60), Integer)
    return cast(ts / 60, Integer)  # SQLite truncates; ts is positive, so this is the floor


def traffic_rows(engine: Engine, since: float, until: float,
                 edges: Sequence[float]) -> list[TrafficRow]:
    """The prediction log's rows with ``since <= ts < until``, grouped (see the module).

    Args:
        engine: The store holding the prediction log.
        since: Earliest ``ts`` (inclusive).
        until: Latest ``ts`` (exclusive).
        edges: The latency bins' upper bounds in ms, ascending.

    Returns:
        One row per model, version, minute, status, guard and latency bin, with its count;
        the minute is returned as its start in unix seconds.

    Raises:
        StoreError: the store failed.
    """
    p = predictions
    minute = _minute(engine).label("minute")
    lat = _bin(p.c.latency_ms, list(edges), 0, len(edges)).label("bin")
    stmt = (select(p.c.model, p.c.version, minute, p.c.status, p.c.guard, lat, func.count())
            .where(p.c.ts >= since, p.c.ts < until)
            .group_by(p.c.model, p.c.version, minute, p.c.status, p.c.guard, lat))
    try:
        with engine.connect() as conn:
            return [(str(r[0]), int(r[1]), int(r[2]) * 60, str(r[3]), r[4], int(r[5]),
                     int(r[6])) for r in conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise store_error("read the prediction log's traffic", exc) from None


def has_tables(engine: Engine, names: Sequence[str]) -> dict[str, bool]:
    """Which of the tables ``names`` the store holds (optional stores: the prediction log,
    monitoring results, alert states, rollouts are created by the parts that use them).

    Raises:
        StoreError: the store failed.
    """
    try:
        found = set(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        raise store_error("list the store's tables", exc) from None
    return {n: n in found for n in names}


__all__ = ["TrafficRow", "has_tables", "traffic_rows"]
