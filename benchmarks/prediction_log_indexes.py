"""The prediction log's insert cost on SQLite: partial subject/tenant indexes against whole ones.

Most logged predictions name no data subject and no tenant. Since issue 19 the two indexes on
those columns are partial on SQLite (``WHERE subject_id IS NOT NULL``, ``WHERE tenant IS NOT
NULL``): a row that names neither is not inserted into them. This commits the same rows, in
transactions of ``--batch`` rows as the log writer does (``DriverInsert``: the driver's
``executemany`` into both tables), into two fresh stores: one built by ``ensure_schema`` (the
partial indexes) and one with the two indexes whole (as before), rounds interleaved. One row in
``--named`` names a subject and a tenant. Printed: CPU microseconds per row of each, the ratio.

Run (about 20 s)::

    python benchmarks/prediction_log_indexes.py
    python benchmarks/prediction_log_indexes.py --rows 100000 --batch 64
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_inserts import driver_inserts
from keelwork.adapters.stores.prediction_store import ensure_schema, record_to_row
from keelwork.core.predictions import PredictionRecord, new_prediction_id


def store(path: Path, *, whole: bool) -> Engine:
    """A fresh store; ``whole``: the subject and tenant indexes as they were before."""
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    if whole:
        with engine.begin() as conn:
            for column in ("subject_id", "tenant"):
                conn.exec_driver_sql(f"DROP INDEX ix_predictions_{column}")
                conn.exec_driver_sql(f"CREATE INDEX ix_predictions_{column} "
                                     f"ON predictions ({column})")
    return engine


def rows(n: int, named_every: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` log rows of a 30-feature model, one in ``named_every`` naming subject and tenant."""
    out = []
    for i in range(n):
        named = i % named_every == 0
        out.append(record_to_row(PredictionRecord(
            id=new_prediction_id(), ts=time.time(), model="bench", version=1,
            tenant=f"tenant-{i % 7}" if named else None,
            subject_id=f"subject-{rng.randrange(10_000)}" if named else None,
            inputs=[round(rng.uniform(-3, 3), 6) for _ in range(30)], outputs=1,
            latency_ms=1.9, model_latency_ms=1.7, answered_by="bench:1",
            request_meta={"protocol": "v1"})))
    return out


def commit_all(engine: Engine, data: list[dict[str, Any]], batch: int) -> float:
    """CPU seconds to commit ``data`` in transactions of ``batch`` rows."""
    meta, payload = driver_inserts(engine)
    started = time.process_time()
    for at in range(0, len(data), batch):
        chunk = data[at:at + batch]
        with engine.begin() as conn:
            meta.run(conn, chunk)
            payload.run(conn, chunk)
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=48_000, help="rows per round (48000)")
    ap.add_argument("--batch", type=int, default=16, help="rows per transaction (16)")
    ap.add_argument("--named", type=int, default=20,
                    help="one row in this many names a subject and a tenant (20)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="keel-log-indexes-"))
    rng = random.Random(7)
    try:
        engines = {"partial (shipped)": store(work / "partial.db", whole=False),
                   "whole (before)": store(work / "whole.db", whole=True)}
        per_row: dict[str, list[float]] = {name: [] for name in engines}
        for r in range(args.rounds):
            data = rows(args.rows, args.named, rng)
            order = list(engines.items()) if r % 2 == 0 else list(engines.items())[::-1]
            for name, engine in order:
                per_row[name].append(commit_all(engine, data, args.batch) / len(data) * 1e6)
        for engine in engines.values():
            engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.rows} rows x {args.rounds} rounds, {args.batch} rows per transaction, "
          f"1 in {args.named} naming a subject and a tenant (SQLite WAL, synchronous=NORMAL)")
    for name, values in per_row.items():
        print(f"  {name:<18} {statistics.median(values):6.1f} CPU us/row "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")
    ratio = statistics.median(per_row["whole (before)"]) / statistics.median(
        per_row["partial (shipped)"])
    print(f"ratio (whole / partial): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
