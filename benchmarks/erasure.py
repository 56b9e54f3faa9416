"""Erasing one data subject from a 1M-row prediction log (issue 16: <= 1 s).

Fills a store (SQLite file, or PostgreSQL with ``--pg-url``) with ``--rows`` predictions of
``--subjects`` subjects (payloads with an e-mail address, a label each), then erases
``--erase`` subjects one by one with :func:`keelwork.service.subjects.erase` (predictions,
payloads, labels, a tombstone, an audit entry; on SQLite secure delete and a WAL checkpoint)
and reports the time per erasure. The payloads are sealed per subject as the server seals them
(``subject_keys.db`` beside the store; ``--no-seal`` to leave them plain), so each erasure also
destroys the subject's key (secure delete and a checkpoint of the key file).

The competitor is what a store without a subject index must do: find the subject's rows by
scanning the payloads (``DELETE ... WHERE inputs LIKE '%<e-mail>%'``, the way one would hunt
one person in a log keyed by nothing but text), timed in the same run on a copy of the same data.

    python benchmarks/erasure.py                       # SQLite, 1M rows
    python benchmarks/erasure.py --pg-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import text

from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.ingest_ledger_store import Ledger
from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.prediction_store import (
    META_COLUMNS,
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.adapters.stores.subject_keys import SubjectKeys, key_file
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.service.subjects import erase

KEY = b"b" * 32


def fill(url: str, rows: int, subjects: int, seal: bool) -> None:
    engine = make_engine(url)
    path = key_file(engine)
    keys = SubjectKeys(path, KEY) if seal and path is not None else None
    ins_meta, ins_payload = insert_statements(engine)
    ensure_schema(engine)
    Ledger(engine).ensure_schema()
    AuditLog(engine).ensure_schema()
    now = time.time()
    chunk = 20_000
    with Progress() as bar:
        task = bar.add_task("filling the log", total=rows)
        for start in range(0, rows, chunk):
            recs = [PredictionRecord(
                id=new_prediction_id(), ts=now - rows + i, model="m", version=1,
                subject_id=f"subject-{i % subjects:07d}",
                inputs={"email": f"p{i % subjects:07d}@example.org", "x": float(i)},
                outputs=i % 2, latency_ms=1.0) for i in range(start, min(rows, start + chunk))]
            at = datetime.now(UTC)
            flat = [record_to_row(r) for r in recs]
            if keys is not None:
                keys.seal_rows(flat)
            with engine.begin() as conn:
                conn.execute(ins_meta, [{k: r[k] for k in META_COLUMNS} for r in flat])
                conn.execute(ins_payload, [{k: r[k] for k in ("id", "inputs", "outputs",
                                                               "request_meta")} for r in flat])
                conn.execute(labels.insert(), [
                    {"prediction_id": r.id, "label": "1", "ts": r.ts, "source": "bench",
                     "source_row": None, "ingested_at": at} for r in recs])
            bar.update(task, advance=len(recs))
    engine.dispose()
    if keys is not None:
        keys.close()


def keel_erase(url: str, n: int, subjects: int) -> list[float]:
    engine = make_engine(url)
    audit = AuditLog(engine)
    times = []
    destroyed = 0
    for k in range(n):
        subject = f"subject-{(k * 7919) % subjects:07d}"
        t0 = time.perf_counter()
        report = erase(engine, audit, None, None, subject, key=KEY, actor="bench",
                       reason="benchmark")
        times.append(time.perf_counter() - t0)
        assert report.predictions > 0, subject
        destroyed += report.key_destroyed
    engine.dispose()
    print(f"payload keys destroyed: {destroyed} of {n}")
    return times


def scan_erase(url: str, n: int, subjects: int) -> list[float]:
    engine = make_engine(url)
    times = []
    for k in range(n):
        email = f"p{(k * 7919 + 1) % subjects:07d}@example.org"
        t0 = time.perf_counter()
        with engine.begin() as conn:
            ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM prediction_payloads WHERE inputs LIKE :p"), {"p": f"%{email}%"})]
            for table, col in (("labels", "prediction_id"), ("prediction_payloads", "id"),
                               ("predictions", "id")):
                for i in ids:
                    conn.execute(text(f"DELETE FROM {table} WHERE {col} = :i"), {"i": i})
        times.append(time.perf_counter() - t0)
    engine.dispose()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--erase", type=int, default=20)
    ap.add_argument("--pg-url", default=None, help="a fresh PostgreSQL database to use")
    ap.add_argument("--no-seal", action="store_true", help="leave the payloads plain")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keel-erasure-"))
    try:
        if args.pg_url:
            url = args.pg_url
            fill(url, args.rows, args.subjects, False)
            scan_url = url
        else:
            url = f"sqlite:///{tmp / 'keel.db'}"
            fill(url, args.rows, args.subjects, not args.no_seal)
            # The competitor's copy keeps plain payloads (its scan must find the e-mails).
            (tmp / "plain").mkdir()
            fill(f"sqlite:///{tmp / 'plain' / 'keel.db'}", args.rows, args.subjects, False)
            shutil.move(tmp / "plain" / "keel.db", tmp / "scan.db")
            scan_url = f"sqlite:///{tmp / 'scan.db'}"
        ours = keel_erase(url, args.erase, args.subjects)
        theirs = scan_erase(scan_url, max(3, args.erase // 5), args.subjects)
        med, worst = statistics.median(ours), max(ours)
        base = statistics.median(theirs)
        print(f"store: {'postgresql' if args.pg_url else 'sqlite'}; {args.rows:,} predictions "
              f"of {args.subjects:,} subjects")
        print(f"keel erase (indexed, tombstone, audit): median {med * 1000:.1f} ms, "
              f"max {worst * 1000:.1f} ms over {len(ours)} subjects")
        print(f"payload scan + delete: median {base * 1000:.1f} ms over {len(theirs)} subjects")
        print(f"ratio (scan / keel): {base / med:.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
