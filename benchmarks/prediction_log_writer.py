"""Prediction-log writer throughput: SQLAlchemy execute (old path) vs driver executemany (new).

Usage: python benchmarks/prediction_log_writer.py old new old new
64 concurrent async writers x 400 one-record writes, sync durability, SQLite WAL.
"""
import asyncio
import pathlib
import sys
import tempfile
import time

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_log import PredictionLog
from keelwork.adapters.stores.prediction_store import META_COLUMNS, insert_statements
from keelwork.core.predictions import PredictionRecord, new_prediction_id


class Old:
    def __init__(self, stmt, cols): self.stmt, self.cols = stmt, cols
    def run(self, conn, rows): conn.execute(self.stmt, [{k: r[k] for k in self.cols} for r in rows])

async def main(mode):
    d = pathlib.Path(tempfile.mkdtemp())
    e = make_engine(f"sqlite:///{d}/k.db")
    log = PredictionLog(e, d / "spool")
    if mode == "old":
        a, b = insert_statements(e)
        log._ins_meta = Old(a, META_COLUMNS)
        log._ins_payload = Old(b, ("id", "inputs", "outputs", "request_meta"))
    log.start()
    n = 0
    async def writer():
        nonlocal n
        for _ in range(400):
            await log.write([PredictionRecord(
                id=new_prediction_id(), ts=time.time(), model="m", version=1,
                inputs={"a": [1.0] * 30}, outputs=1, latency_ms=0.5)])
            n += 1
    t = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(64)))
    dt = time.perf_counter() - t
    await log.aclose()
    print(mode, f"{n/dt:.0f} records/s", log.stats()["transactions_total"], "transactions")

for mode in sys.argv[1:]:
    asyncio.run(main(mode))
