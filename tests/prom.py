"""The real Prometheus tools for the tests (Debian packages ``prometheus`` and
``prometheus-alertmanager``): :func:`tool` finds one or skips the test (fails it under ``$CI``,
which must install them, as with PostgreSQL in tests/conftest.py); :func:`run` runs one;
:func:`daemon` keeps a server (prometheus, alertmanager) running on loopback for a block."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def tool(name: str, *other_names: str) -> str:
    """The path of a Prometheus tool (under its first name installed: Debian calls
    Alertmanager ``prometheus-alertmanager``), or skip (fail under CI) when it is not
    installed."""
    found = next(filter(None, map(shutil.which, (name, *other_names))), None)
    if found is None:
        why = f"{name} is not installed (Debian: apt-get install prometheus " \
              "prometheus-alertmanager)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)
    return found


def run(*argv: str, cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Wait until ``url`` answers 200 (a daemon's readiness endpoint).

    Raises:
        AssertionError: the daemon exited or was not ready in time (with its log's tail).
    """
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout_s:g} s: {log.read_text()[-3000:]}")


@contextmanager
def daemon(argv: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running (its output in ``log``) once ``ready_url`` answers; stopped after."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        ready(ready_url, proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
