"""Helpers of the tests that run several server processes on one store (``keel serve
--workers N``, ``keel serve --engine ray``): process liveness, the store's lease of the
once-per-fleet work, and steady client load."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from keelwork.adapters.stores.lease_store import LeaseStore
from keelwork.errors import StoreError

#: The lease of the adder service's once-per-fleet work (monitoring loop and the like).
LEASE = "background:live"
#: The header naming the Ray Serve replica that answered (``<replica id>@<host>:<pid>``).
HEADER = "x-keel-replica"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def replica_pid(tag: str) -> int:
    """The pid in a replica's :data:`HEADER` (``<replica id>@<host>:<pid>``)."""
    return int(tag.rsplit(":", 1)[1])


def logged(db: Engine, acked: list[str], seconds: float = 15) -> dict[str, int]:
    """How many times each prediction id is in the shared log, once every one of ``acked``
    is there (or ``seconds`` have passed)."""
    stored: dict[str, int] = {}
    settle = time.monotonic() + seconds
    while time.monotonic() < settle:
        with db.connect() as conn:
            stored = {str(k): int(n) for k, n in conn.execute(
                text("select id, count(*) from predictions group by id"))}
        if all(i in stored for i in acked):
            break
        time.sleep(0.2)
    return stored


def lease(db: Engine) -> tuple[str, int, float] | None:
    """(holder, term, expiry) of :data:`LEASE`, or None (not taken, or no table yet)."""
    try:
        state = LeaseStore(db).get(LEASE)
    except StoreError:  # the table is not created yet
        return None
    return None if state is None else (state.holder, state.term, state.expires_at)


def takes(log: Path) -> list[int]:
    """The pids that took the lease (and started its loops), in the order the log says."""
    marker = f"lease {LEASE} taken by "
    return [int(line.split(marker, 1)[1].split(":")[1])
            for line in log.read_text(errors="replace").splitlines() if marker in line]


def load(base: str, seconds: float, acked: list[str], *, clients: int = 4,
         timeout: float = 20.0, header: str | None = None,
         tags: set[str] | None = None, refused: list[httpx.Response] | None = None) -> None:
    """``clients`` threads POST two adder instances a request to ``base`` for ``seconds``;
    ``acked`` gets every acknowledged prediction id (and ``tags`` each answer's ``header``).
    Any answer other than 200 fails the caller, but a 503 when ``refused`` is given: it is
    kept there and the client goes on (as one honouring a short Retry-After would)."""
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=timeout) as c:
            i = 0
            while not stop.is_set():
                i += 1
                r = c.post("/v1/models/adder:predict",
                           json={"instances": [{"a": worker, "b": i}, {"a": 1, "b": 2}]})
                if r.status_code == 503 and refused is not None:
                    with lock:
                        refused.append(r)
                    time.sleep(0.05)
                    continue
                if r.status_code != 200:
                    failures.append(r.text)
                    return
                with lock:
                    acked.extend(r.json()["prediction_ids"])
                    if header is not None and tags is not None:
                        tags.add(r.headers[header])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures[:3]


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM ``proc`` and wait up to ``timeout`` seconds; past that, kill it and fail."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise
