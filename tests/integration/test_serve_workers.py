"""`keel serve --workers 2`: two processes share the port and the store; every acknowledged
prediction is logged exactly once, the work meant to run once runs in the lease holder only, the
lease moves to another process when its holder is killed with SIGKILL, and /metrics counts the
whole fleet's answers whichever worker answers the scrape (a dead worker's included)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from fleet import alive, load, stop, takes
from fleet import lease as lease_of
from keelwork.adapters.stores.engine import make_engine
from keelwork.service.leases import DEFAULT_RENEW_S, DEFAULT_TTL_S
from live_server import ADDER_SPEC, FIXTURES, free_port


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found






def _logged(db: Engine) -> dict[str, int]:
    with db.connect() as conn:
        return {str(k): int(n) for k, n in
                conn.execute(text("select id, count(*) from predictions group by id"))}


def _holder_pid(db: Engine) -> int | None:
    lease = lease_of(db)
    return None if lease is None else int(lease[0].split(":")[1])




def test_two_workers_share_port_store_and_lease(tmp_path: Path, store_url: str) -> None:
    # Both spellings: `--workers 2` on SQLite, keel.yaml's `server.workers: 2` on PostgreSQL.
    by_field = not store_url.startswith("sqlite")
    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES)
                                        + f"storage: {{url: '{store_url}'}}\n"
                                        + ("server: {workers: 2}\n" if by_field else ""))
    db = make_engine(store_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(tmp_path / "keel.yaml"), "--port", str(port),
             *([] if by_field else ["--workers", "2"]),
             "--log-level", "info", "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=err)
    try:
        # Ready: both workers answer, and one of them holds the lease.
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "two workers not ready in 90 s"
            workers = {p for p in _children(proc.pid) if alive(p)}
            holder = _holder_pid(db)
            ready = 0
            for _ in range(4):
                with contextlib.suppress(httpx.TransportError):
                    ready += httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
            if holder in workers and ready == 4 and len(_spool_dirs(tmp_path)) >= 2:
                break
            time.sleep(0.2)
        lease = lease_of(db)
        # Term 1 was keel serve's own start before the workers (it checks that one server
        # starts, then releases the lease at once): a worker holds term 2.
        assert lease is not None and lease[1] == 2
        acked: list[str] = []
        # > one renewal: the holder keeps it, nobody else takes it
        load(base, 3.0, acked, clients=6, timeout=10)
        assert len(acked) > 100, f"too little load to mean anything: {len(acked)}"
        assert lease_of(db) is not None and lease_of(db)[:2] == lease[:2]  # type: ignore[index]
        # The guarded loops started in one process only: the holder's.
        assert takes(log) == [proc.pid, int(lease[0].split(":")[1])]
        # Two processes wrote: each its own spool directory, named by its pid.
        spool_pids = {int(d.name.split("-")[1]) for d in _spool_dirs(tmp_path)}
        assert len(spool_pids & workers) == 2, (spool_pids, workers)
        # Every acknowledged prediction is in the log, exactly once.
        stored: dict[str, int] = {}
        settle = time.monotonic() + 15
        while time.monotonic() < settle:
            stored = _logged(db)
            if all(i in stored for i in acked):
                break
            time.sleep(0.2)
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions not logged"
        assert len(set(acked)) == len(acked)
        assert [i for i in acked if stored[i] != 1] == []
        # Whichever worker answers a scrape counts every worker's answers (both answered a
        # share of the load, as their two spools show: neither alone has them all).
        served = _scrapes(base, 6)
        assert {s["predictions"] for s in served} == {float(len(acked))}, served
        assert {s["in_flight"] for s in served} == {0.0}, served

        # The holder dies without releasing: another process takes the lease after its expiry.
        old = _holder_pid(db)
        assert old is not None
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            now = lease_of(db)
            assert now is not None
            pid = int(now[0].split(":")[1])
            if pid != old:
                break
            assert time.monotonic() - killed < DEFAULT_TTL_S + 2 * DEFAULT_RENEW_S + 5, \
                "the lease did not move"
            time.sleep(0.1)
        took = time.monotonic() - killed
        assert now[1] == 3 and alive(pid) and pid in _children(proc.pid)
        deadline = time.monotonic() + 5  # the log line follows the take
        while len(takes(log)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert takes(log) == [proc.pid, old, pid]
        # Not before the dead holder's lease expired (nobody took it while it was held).
        assert took >= DEFAULT_TTL_S - 2 * DEFAULT_RENEW_S - 1, took
        r = httpx.post(f"{base}/v1/models/adder:predict",
                       json={"instances": [{"a": 1, "b": 2}]}, timeout=10)
        assert r.status_code == 200 and r.json()["predictions"] == [3.0]
        # The killed worker's counts stay in the sums; its gauges leave them.
        served = _scrapes(base, 4)
        assert {s["predictions"] for s in served} == {float(len(acked) + 1)}, served
        assert {s["in_flight"] for s in served} == {0.0}, served
    finally:
        stop(proc, 30)
    try:
        assert proc.returncode == 0, log.read_text()[-3000:]
        final = lease_of(db)
        assert final is not None and final[2] <= time.time() + 0.5  # released on the way out
    finally:
        db.dispose()


def _scrapes(base: str, n: int) -> list[dict[str, float]]:
    """``n`` scrapes of /metrics, each on a new connection (so the kernel may pick either
    worker): the adder's predictions and the requests in flight."""
    out = []
    for _ in range(n):
        body = httpx.get(f"{base}/metrics", timeout=10, headers={"Connection": "close"}).text
        got = {"predictions": 0.0, "in_flight": -1.0}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "keelwork_predictions_total" \
                        and sample.labels.get("model") == "adder":
                    got["predictions"] += sample.value
                elif sample.name == "keelwork_requests_in_flight":
                    got["in_flight"] = sample.value
        out.append(got)
    return out


def _spool_dirs(project: Path) -> list[Path]:
    spool = project / ".keel" / "spool"
    return [d for d in spool.glob("w-*") if d.is_dir()] if spool.exists() else []
