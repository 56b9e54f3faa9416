"""The checks and folders of ``keel serve --workers N``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keelwork.errors import SpecError
from keelwork.service.serving import MAX_WORKERS_PER_CPU, check_workers, fleet_metrics_dir
from keelwork.spec import load_spec


def _project(tmp_path: Path, url: str = "sqlite:///keel.db") -> Path:
    (tmp_path / "keel.yaml").write_text(
        "service: {name: s, owners: [t@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'x:y'}]\n"
        f"storage: {{url: '{url}'}}\n")
    return tmp_path / "keel.yaml"


def test_metric_folders_of_servers_gone_are_removed(tmp_path: Path) -> None:
    resolved = load_spec(_project(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    root = tmp_path / ".keel" / "metrics"
    (root / f"serve-{gone}").mkdir(parents=True)
    (root / f"serve-{gone}" / "counter_1.db").write_bytes(b"x")
    (root / "notes").mkdir()  # not one of ours: left alone
    mine = fleet_metrics_dir(resolved)
    assert mine == root / f"serve-{os.getpid()}" and mine.is_dir()
    (mine / "counter_2.db").write_bytes(b"x")
    again = fleet_metrics_dir(resolved)  # the same server starting again: empty
    assert again == mine and list(again.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == sorted(["notes", mine.name])


def test_workers_are_bounded_and_need_a_shared_store(tmp_path: Path) -> None:
    resolved = load_spec(_project(tmp_path))
    assert check_workers(resolved, 2, cpus=1) == 2
    with pytest.raises(SpecError, match="more than this machine can hold"):
        check_workers(resolved, MAX_WORKERS_PER_CPU + 1, cpus=1)
    with pytest.raises(SpecError, match="must be >= 1"):
        check_workers(resolved, 0)
    (tmp_path / "m").mkdir()
    memory = load_spec(_project(tmp_path / "m", "sqlite://"))
    with pytest.raises(SpecError, match="in-memory SQLite"):
        check_workers(memory, 2)
