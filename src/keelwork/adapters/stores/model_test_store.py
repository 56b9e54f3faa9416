"""The latest behavioural test run of each model version (``keel test``), kept with it.

Table::

    model_test_runs   (model, version) PK, run_at, actor, passed, tests_digest (SHA-256 of
                      the tests file the run used), body (the run as JSON: each test's
                      verdict, its first failures and what it measured)

One row per registered version (a new run replaces the last): the table grows only with the
registry. The rollout gate compares ``tests_digest`` with the tests file of today: a run of
other tests does not count as a run of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
)

from keelwork.adapters.stores.schema import create_tables
from keelwork.adapters.stores.transactions import connection, retrying_transaction

_STORE = "model test store"

metadata = MetaData()
model_test_runs = Table(
    "model_test_runs", metadata,
    Column("model", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("run_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("tests_digest", String(64), nullable=False),
    Column("body", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredRun:
    """A version's latest test run as stored."""

    model: str
    version: int
    run_at: datetime
    actor: str
    passed: bool
    tests_digest: str
    body: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version,
                "run_at": self.run_at.isoformat(), "actor": self.actor, "passed": self.passed,
                "tests_digest": self.tests_digest, **self.body}


class ModelTestStore:
    """Stores and reads the latest test run per model version."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_schema(self) -> None:
        create_tables(self.engine, metadata, "model test", tables=[model_test_runs])

    def put(self, model: str, version: int, *, actor: str, passed: bool, tests_digest: str,
            body: Mapping[str, Any]) -> StoredRun:
        """Store (replacing the last) the run of ``model`` version ``version``."""
        run = StoredRun(model, version, datetime.now(UTC), actor, passed, tests_digest,
                        dict(body))

        def work(conn: Any) -> None:
            key = ((model_test_runs.c.model == model)
                   & (model_test_runs.c.version == version))
            conn.execute(delete(model_test_runs).where(key))
            conn.execute(model_test_runs.insert().values(
                model=model, version=version, run_at=run.run_at, actor=actor, passed=passed,
                tests_digest=tests_digest, body=orjson.dumps(run.body).decode()))

        retrying_transaction(self.engine, work, store=_STORE, what="storing a test run")
        return run

    def get(self, model: str, version: int) -> StoredRun | None:
        """The latest run of ``model`` version ``version``, or None (never run)."""
        with connection(self.engine, _STORE, "reading a test run") as conn:
            if not conn.dialect.has_table(conn, model_test_runs.name):
                return None
            row = conn.execute(select(model_test_runs).where(
                (model_test_runs.c.model == model)
                & (model_test_runs.c.version == version))).mappings().first()
        if row is None:
            return None
        at = row["run_at"]
        return StoredRun(row["model"], int(row["version"]),
                         at if at.tzinfo is not None else at.replace(tzinfo=UTC), row["actor"],
                         bool(row["passed"]), row["tests_digest"], orjson.loads(row["body"]))


__all__ = ["ModelTestStore", "StoredRun", "model_test_runs"]
