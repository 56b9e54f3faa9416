"""``/metrics`` of replicas that share no metrics folder (``keel serve --engine ray --address``
on several machines): each replica is the worker app a Ray replica builds, started here as two
processes with no folder in common and one PostgreSQL store. A scrape of either answers the
whole fleet's counts (promtool accepts it); a replica killed with SIGKILL leaves its counts in
the sums, and once the lease holder has folded it the table holds one row per live replica
plus the retired sum."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from keelwork.interfaces.cli.serve_app import HANDOFF_VARIABLE, handoff
from live_server import ADDER_SPEC, FIXTURES, free_port


def _replica(project: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, HANDOFF_VARIABLE: handoff(project / "keel.yaml", "warning", False)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory",
             "keelwork.interfaces.cli.serve_app:worker_app", "--host", "127.0.0.1", "--port",
             str(port), "--log-level", "warning", "--no-access-log"],
            env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"replica not ready: {log.read_text(errors='replace')[-3000:]}")


def _answered(base: str) -> float:
    """keelwork_requests_total of status ok, summed over its label sets, as scraped."""
    body = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(body) for s in f.samples
               if s.name == "keelwork_requests_total" and s.labels.get("status") == "ok")


def _until(check: Callable[[], bool], what: str | Callable[[], str],
           limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit_s} s: "
                                 f"{what if isinstance(what, str) else what()}")
        time.sleep(0.2)


@pytest.fixture
def replicas(tmp_path: Path, pg_database: str) -> Iterator[tuple[list[subprocess.Popen[bytes]],
                                                                 list[str], str]]:
    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES)
                                        + f"storage: {{url: '{pg_database}'}}\n")
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for i in range(2):  # one after the other: the first creates the tables
            proc, base = _replica(tmp_path, tmp_path / f"replica{i}.log")
            procs.append(proc)
            bases.append(base)
        yield procs, bases, pg_database
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_either_replica_answers_the_fleet_s_counts(replicas: tuple[
        list[subprocess.Popen[bytes]], list[str], str]) -> None:
    procs, (a, b), url = replicas
    for i in range(5):
        httpx.post(f"{a}/v1/models/adder:predict",
                   json={"instances": [{"a": i, "b": 1}]}).raise_for_status()
    for i in range(3):
        httpx.post(f"{b}/v1/models/adder:predict",
                   json={"instances": [{"a": i, "b": 2}]}).raise_for_status()
    bad = httpx.post(f"{b}/v1/models/adder:predict", json={"instances": [{"a": -1, "b": 1}]})
    assert bad.status_code == 422
    # each replica publishes every second: within a few, both scrapes say 8
    _until(lambda: _answered(a) == 8 and _answered(b) == 8,
           lambda: f"both scrapes count 8 answers (a: {_answered(a)}, b: {_answered(b)}; "
           f"b's scrape: {httpx.get(f'{b}/metrics').text[:3000]})")
    if shutil.which("promtool") is not None or os.environ.get("CI"):
        body = httpx.get(f"{b}/metrics").text
        check = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                               capture_output=True, check=False)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()

    procs[1].send_signal(signal.SIGKILL)  # b dies: its three answers stay in a's sums
    procs[1].wait(timeout=10)
    assert _answered(a) == 8
    httpx.post(f"{a}/v1/models/adder:predict",
               json={"instances": [{"a": 9, "b": 1}]}).raise_for_status()
    assert _answered(a) == 9
    engine = create_engine(url)
    try:
        def folded() -> bool:
            with engine.connect() as conn:
                rows = {r[0] for r in conn.execute(text("SELECT replica FROM fleet_metrics"))}
            return len(rows) == 2 and "(retired)" in rows
        # b is taken for gone 10 s after its last publication; a folds it once it holds the
        # lease (at once if it did, else once b's lease has lapsed, 10 s) and at its next fold
        _until(folded, "the killed replica folded into the retired sum", limit_s=45)
    finally:
        engine.dispose()
    assert _answered(a) == 9
