"""keelwork's own wheel, written from this installation (keelwork.adapters.packaging.wheel)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import keelwork
from keelwork.adapters.packaging.wheel import build_self_wheel, package_files


def test_the_wheel_holds_the_package_and_its_metadata(tmp_path: Path) -> None:
    wheel = build_self_wheel(tmp_path)
    assert wheel.name == f"keelwork-{keelwork.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"keelwork-{keelwork.__version__}.dist-info"
        assert {"keelwork/__init__.py", "keelwork/py.typed",
                "keelwork/interfaces/cli/build_cmd.py", f"{info}/METADATA", f"{info}/WHEEL",
                f"{info}/RECORD", f"{info}/entry_points.txt"} <= names
        assert "keelwork/templates/tabular/keel.yaml" in names  # package data too
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert "keel = keelwork.interfaces.cli.main:run" in zf.read(
            f"{info}/entry_points.txt").decode()
        package = Path(keelwork.__file__).parent
        assert len([n for n in names if n.startswith("keelwork/")]) == len(
            package_files(package))
        # RECORD: every other entry with its hash and size, as installers check them
        rows = list(csv.reader(io.StringIO(zf.read(f"{info}/RECORD").decode())))
        assert {r[0] for r in rows} == names
        for name, digest, size in rows:
            if name.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data), name


def test_the_same_source_gives_the_same_bytes(tmp_path: Path) -> None:
    first = build_self_wheel(tmp_path / "a").read_bytes()
    second = build_self_wheel(tmp_path / "b").read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


def test_pip_installs_it_and_the_package_imports(tmp_path: Path) -> None:
    wheel = build_self_wheel(tmp_path / "w")
    done = subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "--no-deps",
                           "--no-index", "--target", str(tmp_path / "site"), str(wheel)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    probe = subprocess.run([sys.executable, "-c", "import keelwork, sys; "
                            "print(keelwork.__file__, keelwork.__version__)"],
                           capture_output=True, text=True, timeout=60, check=False,
                           env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert probe.returncode == 0, probe.stderr
    path, version = probe.stdout.split()
    assert path.startswith(str(tmp_path / "site")) and version == keelwork.__version__
    assert (tmp_path / "site" / "bin" / "keel").is_file()  # the console script
