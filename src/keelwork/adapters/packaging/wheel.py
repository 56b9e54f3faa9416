"""keelwork as a wheel, from this installation (offline, no build backend needed).

The image must run the keelwork that registered the model, which may be an editable checkout
that no index holds. The wheel is written from the imported package's files and the installed
distribution's metadata (``METADATA``, ``entry_points.txt``); every entry gets the same fixed
time and the entries are sorted, so the same source gives the same bytes (and the lock's hash
of it stays valid from one build to the next).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from keelwork.errors import BuildError

#: Every entry's time: the earliest a zip file can hold (reproducible bytes).
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def package_files(package_dir: Path) -> list[Path]:
    """The files of the package, sorted: sources and data, no byte code."""
    return sorted(p for p in package_dir.rglob("*")
                  if p.is_file() and p.suffix not in _SKIP_SUFFIXES
                  and not _SKIP_DIRS.intersection(p.relative_to(package_dir).parts))


def build_self_wheel(out_dir: Path) -> Path:
    """Write ``keelwork-VERSION-py3-none-any.whl`` of this installation into ``out_dir``.

    Returns:
        The wheel's path.

    Raises:
        BuildError: keelwork's distribution metadata is not installed (run from a bare source
            tree: ``pip install -e .`` first).
    """
    import keelwork

    try:
        dist = distribution("keelwork")
    except PackageNotFoundError:
        raise BuildError("keelwork's package metadata is not installed, so its wheel cannot be "
                         "written; install it (pip install -e . in a checkout).") from None
    metadata = dist.read_text("METADATA")
    if metadata is None:
        raise BuildError("keelwork's installed distribution has no METADATA file; reinstall it.")
    version = dist.version
    info = f"keelwork-{version}.dist-info"
    package_dir = Path(keelwork.__file__).resolve().parent
    entries: list[tuple[str, bytes]] = [
        (f"keelwork/{p.relative_to(package_dir).as_posix()}", p.read_bytes())
        for p in package_files(package_dir)]
    entries.append((f"{info}/METADATA", metadata.encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: keel build\n"
                    b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    entries.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"keelwork-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            item = zipfile.ZipInfo(name, date_time=_EPOCH)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(item, data)
    return path


__all__ = ["build_self_wheel", "package_files"]
