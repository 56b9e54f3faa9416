"""The prediction log's row format: records_to_rows (a shared request_meta encoded once) and
the writer's driver-compiled inserts (prediction_inserts)."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import text

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_inserts import PAYLOAD_COLUMNS, driver_inserts
from keelwork.adapters.stores.prediction_store import (
    META_COLUMNS,
    ensure_schema,
    record_to_row,
    records_to_rows,
    row_to_record,
)
from keelwork.core.predictions import PredictionRecord, new_prediction_id


def _record(meta: dict[str, object], **over: object) -> PredictionRecord:
    fields: dict[str, object] = dict(
        id=new_prediction_id(), ts=1.0, model="m", version=1, tenant=None, subject_id=None,
        inputs=[1.0, 2.5], outputs=1, latency_ms=2.0, model_latency_ms=1.0, status="ok",
        guard=None, answered_by="m@1", request_meta=meta)
    fields.update(over)
    return PredictionRecord(**fields)  # type: ignore[arg-type]


def test_rows_of_records_sharing_a_meta_equal_rows_made_one_by_one() -> None:
    shared = {"protocol": "v1", "output_violations": [{"path": "predictions[0]"}]}
    other = {"protocol": "v2"}
    records = [_record(shared), _record(shared, tenant="t\x00x"), _record(other),
               _record(shared), _record({})]
    rows = records_to_rows(records)
    assert rows == [record_to_row(r) for r in records]
    assert [orjson.loads(r["request_meta"]) for r in rows] == [shared, shared, other, shared, {}]
    assert rows[1]["tenant"] == "tx"  # NUL stripped from text columns, as before
    assert row_to_record(rows[2]).request_meta == other
    assert records_to_rows([]) == []


def test_a_meta_changed_between_two_calls_is_encoded_again() -> None:
    meta: dict[str, object] = {"protocol": "v1"}
    first = records_to_rows([_record(meta)])
    meta["protocol"] = "v2"
    second = records_to_rows([_record(meta)])
    assert orjson.loads(first[0]["request_meta"]) == {"protocol": "v1"}
    assert orjson.loads(second[0]["request_meta"]) == {"protocol": "v2"}


def test_driver_inserts_store_every_column_in_its_place(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    ensure_schema(engine)
    records = [_record({"protocol": "v1"}, tenant=f"t{i}", latency_ms=float(i),
                       inputs={"a": i}) for i in range(5)]
    rows = records_to_rows(records)
    meta, payload = driver_inserts(engine)
    with engine.begin() as conn:
        meta.run(conn, rows)
        payload.run(conn, rows)
        meta.run(conn, rows[:2])  # insert-or-ignore by id: a replay adds nothing
    with engine.connect() as conn:
        stored = conn.execute(text(
            f"SELECT {', '.join('p.' + c for c in META_COLUMNS)}, "
            f"{', '.join('q.' + c for c in PAYLOAD_COLUMNS[1:])} FROM predictions p "
            "JOIN prediction_payloads q ON q.id = p.id ORDER BY p.id")).mappings().all()
    assert [row_to_record(s) for s in stored] == records
