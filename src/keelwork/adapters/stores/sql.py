"""SQL helpers shared by the stores: bounded ``IN`` lists, insert-or-ignore.

Both work on SQLite and PostgreSQL, the two dialects keelwork's stores run on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import String, Table, any_, literal
from sqlalchemy.engine import Connection

from keelwork.errors import StoreError

#: Most values in one SQLite ``IN (...)`` list (it allows 32766 variables; stay far below).
IN_LIST_MAX = 900


def among(conn: Connection, column: Any, values: Sequence[str]) -> Iterator[Any]:
    """WHERE clauses that together match the rows whose ``column`` is one of ``values``.

    PostgreSQL gets one ``column = ANY(:array)`` (one bound array: no planning of a long
    ``IN`` list per query); SQLite gets ``IN`` lists of at most :data:`IN_LIST_MAX` values.

    Args:
        conn: The connection the clauses will run on.
        column: A text column.
        values: The values.

    Yields:
        Clauses; run one query per clause.
    """
    if not values:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        yield column == any_(literal(list(values), type_=ARRAY(String)))
        return
    for start in range(0, len(values), IN_LIST_MAX):
        yield column.in_(list(values[start:start + IN_LIST_MAX]))


def delete_among(conn: Connection, table: Table, column: Any, values: Sequence[Any]) -> int:
    """Delete the rows of ``table`` whose ``column`` is one of ``values`` (bounded lists, as
    :func:`among`; any value type on SQLite, text on PostgreSQL's array form).

    Returns:
        Rows deleted.
    """
    done = 0
    if conn.dialect.name == "postgresql" and values and not isinstance(values[0], str):
        for start in range(0, len(values), IN_LIST_MAX):
            done += conn.execute(table.delete().where(
                column.in_(list(values[start:start + IN_LIST_MAX])))).rowcount
        return done
    for cond in among(conn, column, values):
        done += conn.execute(table.delete().where(cond)).rowcount
    return done


def insert_ignore(dialect: str, table: Table, keys: list[str]) -> Any:
    """An INSERT that skips rows whose ``keys`` already exist (SQLite and PostgreSQL).

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        table: The table.
        keys: The columns of its primary key or of a unique constraint.

    Returns:
        The insert statement.

    Raises:
        StoreError: another dialect.
    """
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    raise StoreError(f"Ingestion supports SQLite and PostgreSQL stores; got {dialect!r}.")



__all__ = ["IN_LIST_MAX", "among", "delete_among", "insert_ignore"]
