"""The real Prometheus tools for the tests (Debian packages ``prometheus`` and
``prometheus-alertmanager``): :func:`tool` finds one or skips the test (fails it under ``$CI``,
which must install them, as with PostgreSQL in tests/conftest.py); :func:`run` runs one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """The path of a Prometheus tool, or skip (fail under CI) when it is not installed."""
    found = shutil.which(name)
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
