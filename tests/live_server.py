"""Starting `keel serve` as a real process for integration tests (shared by several modules)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

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


def start_server(project: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = project / "server.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
             str(project / "keel.yaml"), "--port", str(port), "--log-level", "warning",
             "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready in 60 s")


@contextmanager
def running_server(project: Path) -> Iterator[str]:
    """``keel serve`` of ``project`` while the block runs; yields its base URL."""
    proc, base = start_server(project)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
