"""The prediction log's inserts as its writer runs them: compiled once to the driver's SQL,
run with the DBAPI's ``executemany`` (:class:`DriverInsert`).

The statements themselves (insert-or-ignore by id) are
:func:`keelwork.adapters.stores.prediction_store.insert_statements`.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine

from keelwork.adapters.stores.prediction_store import META_COLUMNS, insert_statements
from keelwork.errors import StoreError

PAYLOAD_COLUMNS = ("id", "inputs", "outputs", "request_meta")


class DriverInsert:
    """An insert compiled once to the driver's SQL, run with the DBAPI's ``executemany``.

    The log writer commits tens of thousands of rows a second; SQLAlchemy's per-execute
    compilation-cache lookup and parameter processing cost about two thirds of the writer's
    time (profiled). The columns are plain strings/numbers/text, so nothing needs processing.
    """

    def __init__(self, engine: Engine, stmt: Any, columns: tuple[str, ...]) -> None:
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        params = compiled.positiontup if self.positional else list(compiled.binds)
        self.order = tuple(params or ())
        if set(self.order) != set(columns):
            raise StoreError(f"internal: compiled insert binds {self.order} != {columns}")
        # A row's parameters in one C call (a generator per row cost ~1 µs of 11 values);
        # itemgetter of one key gives the value itself, not a tuple.
        order = self.order
        self._values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*order) if len(order) > 1 else lambda r: tuple(r[k] for k in order))

    def run(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        if self.positional:
            conn.exec_driver_sql(self.sql, list(map(self._values, rows)))
        else:
            conn.exec_driver_sql(self.sql, [{k: r[k] for k in self.order} for r in rows])


def driver_inserts(engine: Engine) -> tuple[DriverInsert, DriverInsert]:
    """The insert-or-ignore statements of :func:`insert_statements`, driver-compiled."""
    meta, payload = insert_statements(engine)
    return DriverInsert(engine, meta, META_COLUMNS), DriverInsert(engine, payload,
                                                                   PAYLOAD_COLUMNS)


__all__ = ["PAYLOAD_COLUMNS", "DriverInsert", "driver_inserts"]
