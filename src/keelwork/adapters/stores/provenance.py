"""Provenance recorded with every model version: git state, environment and actor.

Everything here is read, never imported: git runs as a subprocess, package versions come from
their metadata.
"""

from __future__ import annotations

import getpass
import platform
import subprocess
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

#: Packages whose versions are recorded with every model version (when installed).
TRACKED_PACKAGES = ("numpy", "scikit-learn", "skops", "onnxruntime", "torch", "transformers",
                    "mlflow", "mlflow-skinny", "pandas", "keelwork")


def git_state(directory: Path) -> tuple[str | None, bool | None]:
    """``(HEAD commit, work tree has uncommitted changes to tracked files)`` of the repository
    containing ``directory``; ``(None, None)`` outside a repository or without git.

    Untracked files do not count as dirty: the freshly trained artifact usually is one.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "-q", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def capture_environment() -> dict[str, Any]:
    """Python version, platform and versions of :data:`TRACKED_PACKAGES` that are installed.

    Read from package metadata: nothing is imported.
    """
    packages: dict[str, str] = {}
    for dist in TRACKED_PACKAGES:
        try:
            packages[dist] = package_version(dist)
        except PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()}-{platform.machine()}".lower(),
        "packages": packages,
    }


def default_actor(user: str | None = None) -> str:
    """Who is acting: ``user`` (the caller passes the ``user`` setting, ``KEELWORK_USER``),
    else the OS user name, else ``"unknown"``."""
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with arbitrary uids)
        return "unknown"


__all__ = ["TRACKED_PACKAGES", "capture_environment", "default_actor", "git_state"]
