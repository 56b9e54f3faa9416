"""`keel serve --engine ray` with keel.yaml's `server.replicas: {min: 1, max: 2,
target_ongoing_requests: 1}` on PostgreSQL: one replica serves while the service is idle;
under steady load (more requests in flight than the target) Ray Serve's autoscaler starts the
second, within a bounded time (its look-back and upscale delay, Ray's defaults of 30 s, plus a
replica's start-up on this 2-CPU machine), and both then answer; every acknowledged prediction
is in the log; SIGTERM stops everything."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from fleet import HEADER, alive, logged, replica_pid, stop
from keelwork.adapters.stores.engine import make_engine
from live_server import ADDER_SPEC, FIXTURES, free_port

pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install 'keelwork[ray]'")

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

#: Seconds the second replica may take to answer once the load starts: Ray's upscale delay
#: (30 s) over its look-back window, a replica's start-up (loading the app, ~5-15 s here), and
#: slack for a machine shared with other work.
SCALE_UP_WITHIN_S = 90.0

PAUSE_MODEL = """\
  - name: pause
    runtime: python
    artifact: "fakes:pause"
    options: {{path: "{fx}"}}
contract:"""


def test_the_autoscaler_adds_a_replica_under_load(tmp_path: Path, pg_database: str) -> None:
    spec = ADDER_SPEC.replace("contract:", PAUSE_MODEL).format(fx=FIXTURES)
    (tmp_path / "keel.yaml").write_text(
        spec + f"storage: {{url: '{pg_database}'}}\n"
        "server: {replicas: {min: 1, max: 2, target_ongoing_requests: 1}}\n")
    db = make_engine(pg_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("ab") as err:  # no --replicas: the counts come from keel.yaml
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(tmp_path / "keel.yaml"), "--engine", "ray", "--port", str(port),
             "--no-access-log"], stdout=err, stderr=err)
    tags: set[str] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "the first replica not ready in 120 s"
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert "starting 1 to 2 Ray Serve replicas" in log.read_text(errors="replace")

        # Idle: one replica answers everything.
        for _ in range(10):
            r = httpx.post(f"{base}/v1/models/adder:predict",
                           json={"instances": [{"a": 1, "b": 2}]}, timeout=10)
            assert r.status_code == 200, r.text
            tags.add(r.headers[HEADER])
        assert len(tags) == 1, tags

        # Load: 4 clients, each keeping a 0.3 s prediction in flight (4 per replica, the target
        # is 1), until a second replica answers.
        acked: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()
        done = threading.Event()

        def client(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as c:
                i = 0
                while not done.is_set():
                    i += 1
                    r = c.post("/v1/models/pause:predict",
                               json={"instances": [{"a": worker, "b": i}]})
                    with lock:
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text}")
                            return
                        acked.extend(r.json()["prediction_ids"])
                        tags.add(r.headers[HEADER])

        threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            while len(tags) < 2 and not failures:
                assert time.monotonic() - started < SCALE_UP_WITHIN_S, \
                    f"no second replica within {SCALE_UP_WITHIN_S:.0f} s of load"
                time.sleep(0.2)
            took = time.monotonic() - started
            time.sleep(2.0)  # both replicas share the load for a moment
        finally:
            done.set()
            for t in threads:
                t.join(timeout=30)
        assert not failures, failures[:3]
        print(f"second replica answered {took:.1f} s after the load started")
        pids = {replica_pid(t) for t in tags}
        assert len(tags) == 2 and len(pids) == 2 and all(alive(p) for p in pids), tags

        stored = logged(db, acked)
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions not logged"
        assert all(stored[i] == 1 for i in acked)
    finally:
        stop(proc, 60)
    try:
        assert proc.returncode == 0, log.read_text(errors="replace")[-4000:]
        deadline = time.monotonic() + 10
        while any(alive(replica_pid(t)) for t in tags) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [t for t in tags if alive(replica_pid(t))], "a replica outlived keel serve"
    finally:
        db.dispose()
