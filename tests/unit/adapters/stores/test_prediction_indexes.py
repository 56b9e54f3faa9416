"""The prediction log's indexes on SQLite: the subject and tenant indexes hold only the rows
that name one (partial indexes: a cheaper insert for the many that name neither), and the
lookups by subject and tenant still use them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records, predictions
from keelwork.adapters.stores.sql import among
from keelwork.core.predictions import PredictionRecord


def _record(i: int, subject: str | None, tenant: str | None) -> PredictionRecord:
    return PredictionRecord(id=f"p{i:04d}", ts=1000.0 + i, model="m", version=1, tenant=tenant,
                            subject_id=subject, inputs={"a": i}, outputs=i, latency_ms=1.0)


def test_subject_and_tenant_indexes_skip_rows_without_them_and_serve_lookups(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    ensure_schema(engine)
    with engine.begin() as conn:
        insert_records(conn, [_record(i, "alice" if i % 10 == 0 else None,
                                      "acme" if i % 5 == 0 else None) for i in range(200)])
    with engine.connect() as conn:
        # The index holds one entry per row that names a subject (tenant), no more.
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM predictions INDEXED BY ix_predictions_subject_id "
            "WHERE subject_id IS NOT NULL").scalar() == 20
        conn.exec_driver_sql("ANALYZE")
        entries = {name: conn.exec_driver_sql(f"SELECT stat FROM sqlite_stat1 WHERE idx = "
                                              f"'{name}'").scalar()
                   for name in ("ix_predictions_subject_id", "ix_predictions_tenant")}
        assert str(entries["ix_predictions_subject_id"]).split()[0] == "20"
        assert str(entries["ix_predictions_tenant"]).split()[0] == "40"
        # Lookups as the erasure and the per-tenant reads write them use the indexes.
        for clause, index in (
                (predictions.c.subject_id == "alice", "ix_predictions_subject_id"),
                (next(among(conn, predictions.c.subject_id, ["alice", "bob"])),
                 "ix_predictions_subject_id"),
                (predictions.c.tenant == "acme", "ix_predictions_tenant")):
            query = select(predictions.c.id).where(clause).compile(
                engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in
                            conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
        found = conn.execute(select(predictions.c.id).where(
            predictions.c.subject_id == "alice")).scalars().all()
        assert len(found) == 20
    engine.dispose()
