"""Filling a prediction log fast for tests and benchmarks: a million rows in seconds.

Rows go through the store's own insert path (:func:`driver_inserts`, the statements the log
writer commits with), in large ``executemany`` batches inside few transactions, with SQLite's
journal relaxed for the fill only (the file is a throw-away test store).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine

from keelwork.adapters.stores.prediction_inserts import PAYLOAD_COLUMNS, driver_inserts
from keelwork.adapters.stores.prediction_store import META_COLUMNS, ensure_schema


def synthetic_rows(n: int, *, now: float, span_s: float, models: Sequence[tuple[str, int, float]],
                   error_share: float = 0.01, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``n`` rows spread evenly over ``[now - span_s, now)``.

    Args:
        n: How many.
        now: The end of the span (unix s).
        span_s: Its length.
        models: ``(model, version, share of the rows)``.
        error_share: Share of rows with status ``error``.
        seed: Random seed (latencies: log-normal around 8 ms; statuses).
    """
    rnd = random.Random(seed)
    cum: list[tuple[float, str, int]] = []
    acc = 0.0
    for model, version, part in models:
        acc += part
        cum.append((acc, model, version))
    for i in range(n):
        u = rnd.random() * acc
        model, version = next((m, v) for c, m, v in cum if u <= c)
        failed = rnd.random() < error_share
        latency = rnd.lognormvariate(2.0, 0.5)
        yield {"id": f"fill-{seed}-{i:09d}", "ts": now - span_s + span_s * i / n,
               "model": model, "version": version, "tenant": None, "subject_id": None,
               "status": "error" if failed else "ok", "guard": None, "answered_by": None,
               "latency_ms": latency, "model_latency_ms": latency * 0.7,
               "inputs": '{"a":1}', "outputs": "null" if failed else '{"label":"good"}',
               "request_meta": "{}"}


def fill(engine: Engine, rows: Iterator[dict[str, Any]], *, batch: int = 50_000) -> int:
    """Insert ``rows`` into the prediction log of ``engine`` (tables created when missing).

    Returns:
        How many rows were inserted.
    """
    ensure_schema(engine)
    meta, payload = driver_inserts(engine)
    done = 0
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                meta.run(conn, chunk)
                payload.run(conn, chunk)
                done += len(chunk)
                chunk = []
        if chunk:
            meta.run(conn, chunk)
            payload.run(conn, chunk)
            done += len(chunk)
    return done


__all__ = ["META_COLUMNS", "PAYLOAD_COLUMNS", "fill", "synthetic_rows"]
