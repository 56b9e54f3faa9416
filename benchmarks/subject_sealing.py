"""What sealing payloads per data subject (crypto-shredding) adds per logged record.

Three measures, each against the same thing without sealing, same run:

1. ``SubjectKeys.seal_rows`` alone, per record, on the writer's batches (512 rows, payloads of
   about ``--payload`` bytes): subjects seen before (their keys exist: one key-file read per
   batch) and all-new subjects (a key made per subject: one key-file write per batch);
2. ``open_payloads`` per record (what every reader pays);
3. the prediction log end to end: ``--records`` records written by a client in calls of 16
   (``async`` durability, then a flush), committed to a SQLite file by the writer thread, with
   and without ``seal``: records per second; and a control that only grows the rows of
   subjects to the size sealing gives them (base64 of the payload plus nonce and tag, no
   cipher): what storing the larger rows costs, apart from the cryptography.

    python benchmarks/subject_sealing.py
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_log import PredictionLog
from keelwork.adapters.stores.prediction_store import record_to_row
from keelwork.adapters.stores.subject_keys import SubjectKeys, open_payloads
from keelwork.core.predictions import PredictionRecord, new_prediction_id

SECRET = b"q" * 32


def records(n: int, subjects: int, payload: int, offset: int = 0) -> list[PredictionRecord]:
    text = "x" * max(0, payload - 120)
    return [PredictionRecord(id=new_prediction_id(), ts=time.time(), model="m", version=1,
                             subject_id=f"subject-{(offset + i) % subjects:07d}",
                             inputs={"email": f"p{i}@example.org", "note": text, "x": float(i)},
                             outputs={"label": i % 2, "score": 0.25}, latency_ms=1.0,
                             request_meta={"route": "/v1/models/m:predict"})
            for i in range(n)]


def per_record(fn: Any, batches: list[list[dict[str, Any]]]) -> float:
    """Median microseconds per record of ``fn(batch)`` over the batches."""
    out = []
    for b in batches:
        t0 = time.perf_counter()
        fn(b)
        out.append((time.perf_counter() - t0) / len(b) * 1e6)
    return statistics.median(out)


def grow(rows: list[dict[str, Any]]) -> None:
    """The control: rows of subjects made as large as sealed ones, without a cipher."""
    for r in rows:
        if r.get("subject_id"):
            for c in ("inputs", "outputs", "request_meta"):
                r[c] = "~k1:" + "0" * 32 + ":" + base64.b64encode(
                    bytes(28) + r[c].encode()).decode("ascii")


def log_rate(tmp: Path, n: int, payload: int, seal: str) -> float:
    d = tmp / seal
    d.mkdir()
    engine = make_engine(f"sqlite:///{d / 'keel.db'}")
    keys = SubjectKeys(d / "subject_keys.db", SECRET) if seal == "sealed" else None
    log = PredictionLog(engine, d / "spool", durability="async",
                        seal=keys.seal_rows if keys is not None
                        else grow if seal == "grown" else None)
    log.start()
    recs = records(n, 5_000, payload)
    t0 = time.perf_counter()
    for i in range(0, n, 16):
        log.write_blocking(recs[i:i + 16])
    assert log.flush(120)
    rate = n / (time.perf_counter() - t0)
    log.close()
    if keys is not None:
        keys.close()
    engine.dispose()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--payload", type=int, default=1024, help="bytes of inputs per record")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--records", type=int, default=50_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keel-seal-"))
    try:
        keys = SubjectKeys(tmp / "subject_keys.db", SECRET)
        known = [[record_to_row(r) for r in records(512, 200, args.payload)]
                 for _ in range(args.batches)]
        keys.seal_rows([dict(r) for b in known for r in b])  # their keys exist
        new = [[record_to_row(r) for r in records(512, 10**7, args.payload, 512 * (k + 1))]
               for k in range(args.batches)]
        copy = [[dict(r) for r in b] for b in known]
        seal_known = per_record(keys.seal_rows, known)
        seal_new = per_record(keys.seal_rows, new)
        engine = make_engine(f"sqlite:///{tmp / 'keel.db'}")
        open_us = per_record(lambda b: open_payloads(engine, b), known)
        plain_us = per_record(lambda b: open_payloads(engine, b), copy)
        engine.dispose()
        keys.close()
        plain = log_rate(tmp, args.records, args.payload, "plain")
        grown = log_rate(tmp, args.records, args.payload, "grown")
        sealed = log_rate(tmp, args.records, args.payload, "sealed")
        print(f"payload ~{args.payload} B of inputs; batches of 512 rows")
        print(f"seal_rows, subjects with keys: {seal_known:.1f} us/record")
        print(f"seal_rows, new subjects (a key made each): {seal_new:.1f} us/record")
        print(f"open_payloads, sealed: {open_us:.1f} us/record (plain rows: {plain_us:.2f})")
        print(f"prediction log, {args.records:,} records in calls of 16: plain {plain:,.0f}/s, "
              f"sealed {sealed:,.0f}/s ({sealed / plain:.2f}x); rows grown to the sealed size "
              f"without a cipher {grown:,.0f}/s ({grown / plain:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
