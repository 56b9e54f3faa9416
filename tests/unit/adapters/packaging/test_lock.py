"""The lock of a served environment (keelwork.adapters.packaging.lock)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from build_tools import need_index, need_uv
from keelwork.adapters.packaging.lock import compile_lock, installed_closure, lock_pins
from keelwork.errors import BuildError


def test_the_closure_is_what_is_installed() -> None:
    found = installed_closure("keelwork", [])
    for name in ("pydantic", "fastapi", "sqlalchemy", "uvicorn", "starlette", "pydantic-core"):
        assert found[name] == version(name), name  # transitive ones too (starlette, core)
    assert "scikit-learn" not in found  # an extra not asked for
    with_sklearn = installed_closure("keelwork", ["sklearn"])
    assert with_sklearn["scikit-learn"] == version("scikit-learn")
    assert with_sklearn["scipy"] == version("scipy")  # scikit-learn's own requirement
    assert installed_closure("no-such-distribution-here", []) == {}


def test_pins_are_read_from_a_lock() -> None:
    text = ("# header\nnumpy==2.1.0 \\\n    --hash=sha256:00\n    # via x\n"
            "uvicorn[standard]==0.30.1 ; python_version >= '3.11' \\\n"
            "Ruamel.Yaml==0.18.6\n-e ./local\n")
    assert lock_pins(text) == {"numpy": "2.1.0", "uvicorn": "0.30.1", "ruamel-yaml": "0.18.6"}


def test_uv_writes_every_pin_with_hashes(tmp_path: Path) -> None:
    need_uv()
    need_index()
    (tmp_path / "wheels").mkdir()
    (tmp_path / "requirements.in").write_text("idna==3.7\n")
    compile_lock(tmp_path, "requirements.in", "requirements.lock", python="3.11",
                 platform="x86_64-manylinux_2_28", find_links="wheels", header="keel build t@1")
    text = (tmp_path / "requirements.lock").read_text()
    assert lock_pins(text) == {"idna": "3.7"}
    assert "--hash=sha256:" in text and "keel build t@1" in text


def test_a_pin_the_index_does_not_have_is_refused_with_uv_s_reason(tmp_path: Path) -> None:
    need_uv()
    need_index()
    (tmp_path / "wheels").mkdir()
    (tmp_path / "requirements.in").write_text("idna==0.0.0.999\n")
    with pytest.raises(BuildError, match=r"does not resolve(.|\n)*idna"):
        compile_lock(tmp_path, "requirements.in", "requirements.lock", python="3.11",
                     platform="x86_64-manylinux_2_28", find_links="wheels", header="h")
    assert not (tmp_path / "requirements.lock").exists()
