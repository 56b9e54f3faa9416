"""The prediction log's write rate on PostgreSQL (issue 18's cluster projection needs it).

keelwork's durable log (``PredictionLog``, ``storage.durability: sync``: an answer is sent only
after its row is committed) against what a hand-written service does: one INSERT and COMMIT per
prediction, each writer on its own connection. Same rows (a 30-float input, an output, the
metadata), same number of concurrent writers, same server: a throw-away PostgreSQL on loopback
started by this script with its own durability on (fsync, synchronous commit, full-page
writes), unlike the tests' server.

Run (needs PostgreSQL's server binaries and ``keelwork[postgres]``)::

    python benchmarks/pg_log_rate.py --writers 64 --per-writer 300 --rounds 3

Prints rows/s for each, the commits keelwork made (group commit: many rows per transaction)
and the ratio. Each round runs both, alternating which goes first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
INPUTS = {f"x{i}": float(i) / 7 for i in range(30)}


async def keel_round(url: str, writers: int, per_writer: int) -> tuple[float, int]:
    """Rows/s through the durable log, and the transactions it took."""
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.prediction_log import PredictionLog
    from keelwork.core.predictions import PredictionRecord, new_prediction_id

    engine = make_engine(url)
    with tempfile.TemporaryDirectory(prefix="keel-pglog-") as spool:
        log = PredictionLog(engine, Path(spool), durability="sync")
        log.start()
        before = log.stats()["transactions_total"]

        async def writer() -> None:
            for _ in range(per_writer):
                await log.write([PredictionRecord(
                    id=new_prediction_id(), ts=time.time(), model="m", version=1,
                    inputs=INPUTS, outputs=1, latency_ms=0.5)])

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        took = time.perf_counter() - started
        commits = log.stats()["transactions_total"] - before
        await log.aclose()
    engine.dispose()
    return writers * per_writer / took, commits


def plain_round(dsn: str, writers: int, per_writer: int) -> float:
    """Rows/s with one transaction per prediction, one connection per writer thread. The
    tables are laid out as keelwork's: the metadata with the indexes the monitor reads by
    (time, model and time), the payload in a table of its own, both written per prediction."""
    import psycopg

    from keelwork.core.predictions import new_prediction_id

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS plain_log, plain_payloads")
        conn.execute("CREATE TABLE plain_log (id text PRIMARY KEY, ts double precision, "
                     "model text, version int, latency_ms double precision)")
        conn.execute("CREATE INDEX ON plain_log (ts)")
        conn.execute("CREATE INDEX ON plain_log (model, ts)")
        conn.execute("CREATE TABLE plain_payloads (id text PRIMARY KEY, inputs text, "
                     "outputs text)")
    body = orjson.dumps(INPUTS).decode()
    gate = threading.Barrier(writers + 1)

    def writer() -> None:
        with psycopg.connect(dsn) as conn:
            gate.wait()
            for _ in range(per_writer):
                pid = new_prediction_id()
                with conn.transaction():
                    conn.execute("INSERT INTO plain_log VALUES (%s, %s, %s, %s, %s)",
                                 (pid, time.time(), "m", 1, 0.5))
                    conn.execute("INSERT INTO plain_payloads VALUES (%s, %s, %s)",
                                 (pid, body, "1"))

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    gate.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return writers * per_writer / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--per-writer", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from pg import PostgresUnavailable, TempPostgres

    try:
        pg = TempPostgres.start(durable=True)
    except PostgresUnavailable as exc:
        print(f"skipped: {exc}")
        return
    with pg:
        url = pg.create_database()
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        keel, plain, commits = [], [], []
        for r in range(args.rounds):
            order = ("keel", "plain") if r % 2 == 0 else ("plain", "keel")
            for which in order:
                if which == "keel":
                    rate, n = asyncio.run(keel_round(url, args.writers, args.per_writer))
                    keel.append(rate)
                    commits.append(n)
                else:
                    plain.append(plain_round(dsn, args.writers, args.per_writer))
            print(f"round {r + 1}: keelwork {keel[-1]:,.0f} rows/s ({commits[-1]} commits for "
                  f"{args.writers * args.per_writer} rows), one transaction per row "
                  f"{plain[-1]:,.0f} rows/s", flush=True)
        k, p = statistics.median(keel), statistics.median(plain)
        print(f"median: keelwork durable log {k:,.0f} rows/s, one transaction per row "
              f"{p:,.0f} rows/s: {k / p:.1f}x; rows per commit "
              f"{args.writers * args.per_writer / statistics.median(commits):.1f}")


if __name__ == "__main__":
    main()
