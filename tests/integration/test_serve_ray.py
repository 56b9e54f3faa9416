"""`keel serve --engine ray --replicas 2` on a fresh project with a PostgreSQL store: both Ray
Serve replicas answer, every acknowledged prediction is logged exactly once, a contract violation
is a 422 naming the field, one replica holds the lease of the once-per-fleet work and another
takes it when the holder is killed with SIGKILL, /metrics sums both replicas' answers, and
SIGTERM stops everything cleanly (the lease released, no replica left running)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.lease_store import LeaseStore
from keelwork.errors import StoreError
from keelwork.service.leases import DEFAULT_RENEW_S, DEFAULT_TTL_S
from live_server import ADDER_SPEC, FIXTURES, free_port

pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install 'keelwork[ray]'")

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

LEASE = "background:live"
HEADER = "x-keel-replica"


def _pid(tag: str) -> int:
    """The pid in a replica's tag (``<replica id>@<host>:<pid>``)."""
    return int(tag.rsplit(":", 1)[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _lease(db: Engine) -> tuple[str, int, float] | None:
    try:
        state = LeaseStore(db).get(LEASE)
    except StoreError:  # the table is not created yet
        return None
    return None if state is None else (state.holder, state.term, state.expires_at)


def _load(base: str, seconds: float, acked: list[str], tags: set[str]) -> None:
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=20) as c:
            i = 0
            while not stop.is_set():
                i += 1
                r = c.post("/v1/models/adder:predict",
                           json={"instances": [{"a": worker, "b": i}, {"a": 1, "b": 2}]})
                if r.status_code != 200:
                    failures.append(r.text)
                    return
                with lock:
                    acked.extend(r.json()["prediction_ids"])
                    tags.add(r.headers[HEADER])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures[:3]


def _scraped_predictions(base: str) -> float:
    body = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(body)
               for sample in family.samples
               if sample.name == "keelwork_predictions_total"
               and sample.labels.get("model") == "adder")


def test_two_ray_replicas_share_store_lease_and_metrics(tmp_path: Path,
                                                        pg_database: str) -> None:
    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES)
                                        + f"storage: {{url: '{pg_database}'}}\n")
    db = make_engine(pg_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(tmp_path / "keel.yaml"), "--engine", "ray", "--replicas", "2",
             "--port", str(port), "--no-access-log"],
            stdout=err, stderr=err)
    tags: set[str] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "two replicas not ready in 120 s"
            try:
                ready = httpx.get(f"{base}/v2/health/ready", timeout=2)
            except httpx.TransportError:
                ready = None
            if ready is not None and ready.status_code == 200 and _lease(db) is not None \
                    and _lease(db)[1] >= 2:  # type: ignore[index]
                break
            time.sleep(0.3)

        acked: list[str] = []
        _load(base, 3.0, acked, tags)
        assert len(acked) > 40, f"too little load to mean anything: {len(acked)}"
        # Both replicas answered: two processes of this machine, both running.
        pids = {_pid(t) for t in tags}
        assert len(tags) == 2 and len(pids) == 2 and all(_alive(p) for p in pids), tags

        # A contract violation is answered by a replica's gateway: 422 naming the field.
        bad = httpx.post(f"{base}/v1/models/adder:predict",
                         json={"instances": [{"a": -3, "b": 1}]}, timeout=10)
        assert bad.status_code == 422, bad.text
        assert bad.json()["details"][0]["path"] == "instances[0].a", bad.text

        # Every acknowledged prediction is in the shared log, exactly once.
        stored: dict[str, int] = {}
        settle = time.monotonic() + 15
        while time.monotonic() < settle:
            with db.connect() as conn:
                stored = {str(k): int(n) for k, n in conn.execute(
                    text("select id, count(*) from predictions group by id"))}
            if all(i in stored for i in acked):
                break
            time.sleep(0.2)
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions not logged"
        assert len(set(acked)) == len(acked) and all(stored[i] == 1 for i in acked)

        # One replica holds the once-per-fleet lease (term 1 was the preflight's start).
        lease = _lease(db)
        assert lease is not None and lease[1] == 2 and lease[2] > time.time()
        assert int(lease[0].split(":")[1]) in pids, (lease, pids)

        # Whichever replica answers a scrape counts both replicas' answers.
        scrapes = {_scraped_predictions(base) for _ in range(4)}
        assert scrapes == {float(len(acked))}, (scrapes, len(acked))

        # The holder dies without releasing: the other replica (or the one Ray starts in its
        # place) takes the lease once it expires, and the service keeps answering.
        old = int(lease[0].split(":")[1])
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            now = _lease(db)
            assert now is not None
            if int(now[0].split(":")[1]) != old:
                break
            assert time.monotonic() - killed < DEFAULT_TTL_S + 2 * DEFAULT_RENEW_S + 5, \
                "the lease did not move"
            time.sleep(0.1)
        new = int(now[0].split(":")[1])
        assert now[1] == 3 and _alive(new), now
        # The guarded loops started in one process at a time: keel serve's own check, the
        # first holder, then its successor (Ray forwards the replicas' log lines).
        deadline = time.monotonic() + 10
        while len(_takes(log)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _takes(log) == [proc.pid, old, new], _takes(log)
        assert time.monotonic() - killed >= DEFAULT_TTL_S - 2 * DEFAULT_RENEW_S - 1
        r = httpx.post(f"{base}/v1/models/adder:predict",
                       json={"instances": [{"a": 1, "b": 2}]}, timeout=20)
        assert r.status_code == 200 and r.json()["predictions"] == [3.0], r.text
        tags.add(r.headers[HEADER])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise
    try:
        assert proc.returncode == 0, log.read_text(errors="replace")[-4000:]
        final = _lease(db)
        assert final is not None and final[2] <= time.time() + 0.5  # released on the way out
        deadline = time.monotonic() + 10
        while any(_alive(_pid(t)) for t in tags) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [t for t in tags if _alive(_pid(t))], "a replica outlived keel serve"
        assert "Traceback" not in log.read_text(errors="replace"), \
            log.read_text(errors="replace")[-4000:]
    finally:
        db.dispose()


def _takes(log: Path) -> list[int]:
    """The pids that took the lease (and started its loops), in the order the log says."""
    marker = f"lease {LEASE} taken by "
    return [int(line.split(marker, 1)[1].split(":")[1])
            for line in log.read_text(errors="replace").splitlines() if marker in line]
