"""Helpers of the tests that run several server processes on one store (``keel serve
--workers N``, ``keel serve --engine ray``): process liveness, the store's lease of the
once-per-fleet work, steady client load, and the batch with one poisoned request."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from keelwork.adapters.stores.lease_store import LeaseStore
from keelwork.errors import StoreError

#: The lease of the adder service's once-per-fleet work (monitoring loop and the like).
LEASE = "background:live"
#: The header naming the Ray Serve replica that answered (``<replica id>@<host>:<pid>``).
HEADER = "x-keel-replica"
#: fixtures/fakes.py's MARKS_VARIABLE: the folder its `marked` model leaves its marks in.
MARKS_VARIABLE = "KEEL_TEST_MARKS"
#: fixtures/fakes.py's POISON: the `b` that makes its `picky` model raise.
POISON = 13
#: The `slow` (marked) and `picky` models, put before the adder spec's ``contract:``.
MARKED_MODELS = """\
  - name: slow
    runtime: python
    artifact: "fakes:marked"
    timeout_ms: 10000
    options: {{path: "{fx}"}}
  - name: picky
    runtime: python
    artifact: "fakes:picky"
    options: {{path: "{fx}"}}
    timeout_ms: 10000
    batching: {{max_batch_size: 16, max_wait_ms: 20}}
contract:"""


def picky(base: str, b: int, timeout: float = 30) -> httpx.Response | None:
    """A prediction of the `picky` model; None when the client gave up first."""
    try:
        return httpx.post(f"{base}/v1/models/picky:predict",
                          json={"instances": [{"a": 1, "b": b}]}, timeout=timeout)
    except httpx.TimeoutException:
        return None


def poisoned_batch(base: str, marks: Path) -> tuple[list[str], httpx.Response]:
    """ray #42593: eight good requests and a poisoned one batched together are answered 200
    and a 500 of its own; a client that gives up mid-batch breaks nothing. Tried up to three
    times, until the poisoned request shared a batch (the `picky` model's marks say so).
    Returns the acknowledged prediction ids and the poisoned request's answer."""
    acked: list[str] = []
    for _ in range(3):
        with ThreadPoolExecutor(10) as pool:
            good = [pool.submit(picky, base, i) for i in range(8)]
            time.sleep(0.03)  # they run or queue; the poisoned one joins the queue
            poisoned = pool.submit(picky, base, POISON)
            quitter = pool.submit(picky, base, 100, 0.05)
            answers = [f.result() for f in good]
            bad = poisoned.result()
            assert quitter.result() is None
        assert all(r is not None and r.status_code == 200 and r.json()["predictions"] == [3.0]
                   for r in answers), [r and (r.status_code, r.text) for r in answers]
        acked += [i for r in answers if r is not None for i in r.json()["prediction_ids"]]
        assert bad is not None and bad.status_code == 500, bad and bad.text
        shared = [m for m in marks.glob("poison-*") if int(m.name.split("-")[1]) > 1]
        for mark in marks.iterdir():
            mark.unlink()
        if shared:
            return acked, bad
    pytest.fail("the poisoned request never shared a batch in 3 tries")


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


#: What Ray Serve 2.60's request router logs (ERROR, with a traceback) when it hands a replica
#: to a pending request whose future was settled meanwhile, as happens while a replica dies:
#: an InvalidStateError of its own, caught by its routing loop, the request routed anyway.
RAY_ROUTER_RACE = "Unexpected error in _fulfill_pending_requests"


def tracebacks(log: str) -> list[str]:
    """The tracebacks in a server's log, each whole, except Ray Serve's router race
    (:data:`RAY_ROUTER_RACE`): a block is skipped only when the line before it is that
    message, every frame is in Ray Serve's own code and it ends in ``InvalidStateError``.
    Lines of Ray's processes carry a ``(name pid=N)`` prefix and interleave; a block is read
    from its own process's lines."""
    lines = log.splitlines()
    found = []
    for i, line in enumerate(lines):
        head, marker, _ = line.partition("Traceback (most recent call last):")
        if not marker:
            continue
        block = [line]
        for later in lines[i + 1:]:
            if not later.startswith(head):  # another process's line
                continue
            block.append(later)
            if not later[len(head):].startswith(" "):  # the exception's line ends it
                break
        before = next((x for x in reversed(lines[:i]) if x.startswith(head)), "")
        frames = [b for b in block[1:] if b[len(head):].lstrip().startswith("File ")]
        if (RAY_ROUTER_RACE in before and frames
                and all("/ray/serve/_private/" in f for f in frames)
                and block[-1].endswith("InvalidStateError: invalid state")):
            continue
        found.append("\n".join(block))
    return found
