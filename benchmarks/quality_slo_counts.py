"""Quality-SLO readings over a SQLite log: a full recount vs the sums kept per minute.

Usage: python benchmarks/quality_slo_counts.py [N]   (default 100000 labelled predictions)

N predictions spread over one day, all but 1,000 labelled; per metric (accuracy, null_rate),
the first reading (parses every row), a second with nothing changed, and one after the last
1,000 labels arrive late. Prints the times and the ratio full / kept (the competitor is
recounting every window from the log at each evaluation, as a reader without kept sums does).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.ingest_tables import labels
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records
from keelwork.adapters.stores.quality_counts import QualityCountReader
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.core.slo.quality import QualityIndicator

END = 1_999_980.0  # a whole minute
WINDOWS = [300, 1800, 3600, 21_600, 86_400]


def main(n: int) -> None:
    engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/keel.db")
    ensure_schema(engine)
    LabelStore(engine).ensure_schema()
    records = [PredictionRecord(
        id=new_prediction_id(), ts=END - 86_400 + i * 86_400 / n, model="m", version=1,
        inputs={"age": None if i % 7 == 0 else 30, "job": "x"},
        outputs={"label": "yes" if i % 3 else "no", "probabilities": [0.3, 0.7]},
        latency_ms=1.0) for i in range(n)]
    for i in range(0, n, 20_000):
        with engine.begin() as conn:
            insert_records(conn, records[i:i + 20_000])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(labels.insert(), [
            {"prediction_id": r.id, "label": '"yes"', "ts": r.ts, "source": "bench",
             "source_row": None, "ingested_at": now} for r in records[:n - 1000]])
    late = [{"prediction_id": r.id, "label": "no"} for r in records[n - 1000:]]
    print(f"{n} predictions in one day, {n - 1000} labelled; SQLite; windows {WINDOWS}")
    for metric in ("accuracy", "null_rate"):
        ind = QualityIndicator(metric, classes=("no", "yes"), features=("age",),
                               input_names=("age", "job"))
        reader = QualityCountReader(engine)
        t = time.perf_counter()
        reader.counts(ind, ["m"], END, WINDOWS)
        first = time.perf_counter() - t
        t = time.perf_counter()
        reader.counts(ind, ["m"], END, WINDOWS)
        same = time.perf_counter() - t
        if metric == "accuracy":
            LabelStore(engine).submit(late)
        t = time.perf_counter()
        kept = reader.counts(ind, ["m"], END, WINDOWS)
        after = time.perf_counter() - t
        t = time.perf_counter()
        full = QualityCountReader(engine).counts(ind, ["m"], END, WINDOWS)
        recount = time.perf_counter() - t
        assert kept == full, "kept sums differ from a full recount"
        print(f"{metric:10} first {first:.2f} s; unchanged {same:.2f} s; after late labels "
              f"{after:.2f} s ({reader.rows_read} rows parsed); full recount {recount:.2f} s; "
              f"ratio full / kept {recount / after:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
