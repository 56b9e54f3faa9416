"""keel drift's use-case: files in, a typed drift report out, phases and the profile told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwork.core.monitors.profile import TableProfile
from keelwork.errors import MonitorError
from keelwork.service.monitoring.compare import PROFILED, SAVED, compare_files

TEXTS = ["the parcel came quickly and works fine", "broken on arrival and asking for a refund",
         "decent value for the money overall"]


def _write(path: Path, shift: float, text: bool = True) -> Path:
    lines = ["x,c,review" if text else "x,c"]
    for i in range(300):
        row = f"{(i % 17) + shift},{'ab'[i % 2]}"
        lines.append(f"{row},{TEXTS[i % 3]}" if text else row)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_files_compare_into_a_typed_report(tmp_path: Path) -> None:
    ref, cur = _write(tmp_path / "ref.csv", 0), _write(tmp_path / "cur.csv", 5, text=False)
    phases: list[str] = []
    profiles: list[TableProfile] = []
    run = compare_files(ref, cur, text=["review"], embed=False, on_phase=phases.append,
                        on_reference=profiles.append)
    assert run.how == PROFILED and phases == ["comparing", "comparing text columns"]
    assert list(profiles[0].columns) == ["x", "c"]  # the text column is compared apart
    assert run.report.drifted == ("x", "review")
    assert run.report.summary.missing == ("review",)
    assert run.report.current_profile is not None


def test_a_saved_profile_is_read_back(tmp_path: Path) -> None:
    ref, cur = _write(tmp_path / "ref.csv", 0, text=False), _write(tmp_path / "c.csv", 0, False)
    saved: list[TableProfile] = []
    compare_files(ref, cur, on_reference=saved.append)
    (tmp_path / "ref.json").write_text(json.dumps(saved[0].as_dict()))
    run = compare_files(tmp_path / "ref.json", cur)
    assert run.how == SAVED and run.report.drifted == ()
    with pytest.raises(MonitorError, match="--text needs the reference texts"):
        compare_files(tmp_path / "ref.json", cur, text=["review"])
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(MonitorError, match="not a keelwork reference profile"):
        compare_files(tmp_path / "other.json", cur)
