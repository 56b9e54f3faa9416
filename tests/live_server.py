"""Starting `keel serve` as a real process for integration tests (shared by several modules)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from fleet import stop

FIXTURES = Path(__file__).resolve().parent / "fixtures"

ADDER_SPEC = """\
service: {{name: live, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
    batching: {{max_batch_size: 16, max_wait_ms: 1}}
contract:
  inputs:
    - {{name: a, type: float, min: 0, max: 1000000}}
    - {{name: b, type: integer}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each socket stays bound until all are chosen, so the
    kernel cannot hand the same port out twice (two ``free_port()`` calls can)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


#: The engines the serving and releases suites run on: one uvicorn process on the project's
#: SQLite, Ray Serve with two replicas on a PostgreSQL database (replicas share it), and
#: granian's Rust front (predict) beside keelwork's app (the rest) on the project's SQLite.
ENGINES = ("uvicorn", "ray", "granian")


class Served(NamedTuple):
    """Where a client sends what: ``fast`` predict, the V2 protocol and health; ``app`` the
    rest (the same URL, but on a fast engine, whose admin port serves keelwork's whole app)."""

    fast: str
    app: str


def engine_spec(spec: str, engine: str, storage_url: str | None) -> str:
    """``spec`` for ``engine``: Ray's replicas get the shared ``storage_url``."""
    if engine == "ray":
        assert storage_url is not None, "the ray engine needs a PostgreSQL storage URL"
        return spec + f"storage: {{url: '{storage_url}'}}\n"
    return spec


#: The suites' ray engine serves each model version from a Serve deployment of its own, as
#: ``keel serve --engine ray`` does by default; ``KEEL_TEST_RAY_VERSIONS=0`` runs them with every
#: version inside each gateway replica (``--no-version-deployments``).
RAY_VERSIONS = ["--no-version-deployments"] if os.environ.get("KEEL_TEST_RAY_VERSIONS") == "0" \
    else []


def start_server(project: Path, engine: str = "uvicorn") -> tuple[subprocess.Popen[bytes], str]:
    """``keel serve`` of ``project`` on ``engine`` (``uvicorn``, ``workers``: two of them,
    ``ray``: two replicas), ready: with two, both answer."""
    port = free_port()
    log = project / "server.log"
    extra = {"ray": ["--engine", "ray", "--replicas", "2", *RAY_VERSIONS],
             "workers": ["--workers", "2"]}.get(engine, [])
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(project / "keel.yaml"), "--port", str(port),
             # on Ray, info: keel serve's keeper says when each version's deployment runs
             "--log-level", "info" if engine == "ray" else "warning",
             "--no-access-log", *extra],
            stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    wait_s = {"ray": 150, "workers": 90}.get(engine, 60)
    deadline = time.monotonic() + wait_s
    replicas: set[str] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            ready = httpx.get(f"{base}/v2/health/ready", timeout=2)
        except httpx.TransportError:
            ready = None
        if ready is not None and ready.status_code == 200:
            if engine == "uvicorn":
                return proc, base
            if engine == "workers":  # both workers up: six fresh connections answered
                with contextlib.suppress(httpx.TransportError):
                    if all(httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
                           for _ in range(6)):
                        return proc, base
                continue
            replicas.add(ready.headers.get("x-keel-replica", ""))
            if len(replicas - {""}) >= 2:
                return proc, base
        time.sleep(0.1)
    stop_server(proc, engine)
    raise AssertionError(f"server did not become ready in {wait_s} s: "
                         f"{log.read_text(errors='replace')[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes], engine: str = "uvicorn") -> None:
    """SIGTERM, then SIGKILL past the engine's grace (Ray stops its replicas first)."""
    proc.terminate()
    try:
        proc.wait(timeout=90 if engine == "ray" else 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def running_server(project: Path, engine: str = "uvicorn") -> Iterator[str]:
    """``keel serve`` of ``project`` on ``engine`` while the block runs; yields its base URL."""
    proc, base = start_server(project, engine)
    try:
        yield base
    finally:
        stop_server(proc, engine)


#: The engines with a Rust front on the predict port (`keel serve --engine granian|mosec`):
#: keelwork's whole app is on the admin port beside it.
FAST_ENGINES = ("mosec", "granian")


def serve_fast_engine(project: Path, engine: str, *extra: str) -> subprocess.Popen[bytes]:
    """``keel serve --engine ENGINE`` of ``project`` with ``extra`` arguments, started (not
    yet ready), in its own process group: the tree can be killed at once."""
    log = project / "server.log"
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(project / "keel.yaml"), "--engine", engine, "--log-level", "warning",
             "--no-access-log", *extra], stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True)


def ready_fast_engine(proc: subprocess.Popen[bytes], base: str, admin: str, log: Path) -> None:
    """Wait until the fast port answers ``/`` and the admin port is ready (120 s at most)."""
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "not ready in 120 s:\n" + log.read_text()[-3000:]
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/", timeout=2).status_code == 200 and \
                    httpx.get(f"{admin}/v2/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.3)


def start_fast_engine(project: Path, engine: str = "granian"
                      ) -> tuple[subprocess.Popen[bytes], str, str]:
    """``keel serve --engine ENGINE`` of ``project``, ready: the process, the fast port's URL
    and the admin port's."""
    port, admin_port = free_ports(2)
    base, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    proc = serve_fast_engine(project, engine, "--port", str(port), "--admin-port",
                             str(admin_port))
    try:
        ready_fast_engine(proc, base, admin, project / "server.log")
    except BaseException:
        stop(proc, timeout=60)
        raise
    return proc, base, admin


@contextmanager
def fast_engine(project: Path, engine: str = "granian"
                ) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """``keel serve --engine ENGINE`` of ``project``, ready; yields the fast port's and the
    admin port's URLs and the process, and stops the tree after the block."""
    proc, base, admin = start_fast_engine(project, engine)
    try:
        yield base, admin, proc
    finally:
        stop(proc, timeout=60)


@contextmanager
def served(project: Path, engine: str) -> Iterator[Served]:
    """``keel serve`` of ``project`` on ``engine`` (one of :data:`ENGINES`, or ``mosec``,
    ``workers``) while the block runs; yields where to send what."""
    if engine in FAST_ENGINES:
        with fast_engine(project, engine) as (fast, app, _proc):
            yield Served(fast, app)
    else:
        with running_server(project, engine) as base:
            yield Served(base, base)
