"""The pinned lock of a served environment, written by uv (``uv pip compile``).

- :func:`installed_closure`: the versions installed here of everything keelwork (with the
  extras asked) needs, read from package metadata (nothing is imported);
- :func:`compile_lock`: ``uv pip compile --generate-hashes`` of a requirements file for the
  image's Python and platform: every pin exact, every file's hash, keelwork's own wheel found
  beside it. uv asks the package index (``UV_INDEX_URL``, default PyPI) for the hashes;
- :func:`lock_pins`: the ``name==version`` pins a lock holds.

uv comes from the ``build`` extra (its PyPI package ships the binary), else from ``PATH``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from keelwork.errors import BuildError, MissingExtraError

#: Seconds uv may take to resolve and hash a lock (it asks the index for each package).
LOCK_TIMEOUT_S = 300.0
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_closure(root: str, extras: Iterable[str]) -> dict[str, str]:
    """``{canonical name: installed version}`` of ``root`` (with ``extras``) and everything it
    requires, transitively, for this interpreter (environment markers evaluated here).

    A requirement that is not installed is left out: the lock resolves it from the index.

    Raises:
        MissingExtraError: the ``packaging`` library (build extra) is not installed.
    """
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip's tools almost always
        raise MissingExtraError("packaging", "build", "Reading the installed environment") \
            from None
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = (_canonical(name), wanted)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        found[_canonical(dist.metadata["Name"] or name)] = dist.version
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not any(
                    req.marker.evaluate({"extra": e}) for e in (*wanted, "")):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return found


def uv_binary() -> str:
    """The uv executable: the ``uv`` package's (build extra), else one on ``PATH``.

    Raises:
        MissingExtraError: neither is there.
    """
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found is None:
        raise MissingExtraError("uv", "build", "Writing the lock of 'keel build'")
    return found


def compile_lock(directory: Path, requirements: str, output: str, *, python: str,
                 platform: str, find_links: str, header: str) -> None:
    """``uv pip compile`` ``directory/requirements`` into ``directory/output`` with hashes.

    Args:
        directory: The build context (paths below are relative to it, as the lock shows them).
        requirements: The input file's name.
        output: The lock's file name.
        python: The image's Python version (``3.11.7``).
        platform: The image's platform (``x86_64-manylinux_2_28``).
        find_links: A folder of local wheels (keelwork's own).
        header: The command the lock's header names as its origin.

    Raises:
        BuildError: uv failed (a pin the index does not have, the index unreachable...); the
            message carries uv's own last lines.
        MissingExtraError: uv is not installed.
    """
    command = [uv_binary(), "pip", "compile", requirements, "--output-file", output,
               "--generate-hashes", "--python-version", python, "--python-platform", platform,
               "--find-links", find_links, "--custom-compile-command", header, "--quiet"]
    try:
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True,
                              timeout=LOCK_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BuildError(f"uv did not write the lock within {LOCK_TIMEOUT_S:.0f} s (is the "
                         "package index reachable? UV_INDEX_URL names another).") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise BuildError(f"The lock does not resolve: uv pip compile exited "
                         f"{done.returncode}:\n{tail}")


def lock_pins(text: str) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a lock."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


__all__ = ["LOCK_TIMEOUT_S", "compile_lock", "installed_closure", "lock_pins", "uv_binary"]
