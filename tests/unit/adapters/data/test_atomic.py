"""keelwork.adapters.data.atomic: a file appears complete under its name, or not at all."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from keelwork.adapters.data.atomic import atomic_path, atomic_paths, write_text_atomic
from keelwork.adapters.data.tables import read_data, write_table_atomic
from keelwork.errors import DataFileError


def test_the_final_name_appears_only_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with atomic_path(out) as partial:
        partial.write_text("x")
        assert partial.name == "out.txt.partial" and not out.exists()
    assert out.read_text() == "x" and not partial.exists()


def test_a_failure_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("before")
    with pytest.raises(KeyboardInterrupt), atomic_path(out) as partial:
        partial.write_text("half")
        raise KeyboardInterrupt
    assert out.read_text() == "before" and not list(tmp_path.glob("*.partial"))


def test_several_files_are_renamed_only_when_all_succeeded(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with pytest.raises(RuntimeError), atomic_paths(a, b) as (pa_, _pb):
        pa_.write_text("a")
        raise RuntimeError("the second one failed")
    assert not a.exists() and not b.exists() and not list(tmp_path.glob("*.partial"))
    with atomic_paths(a, b) as (pa_, pb):
        pa_.write_text("a")
        pb.write_text("b")
    assert (a.read_text(), b.read_text()) == ("a", "b")


def test_write_text_atomic(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "r.json", "{}")
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("name", ["t.csv", "t.tsv.gz", "t.parquet", "t.jsonl"])
def test_tables_round_trip_through_the_one_writer(tmp_path: Path, name: str) -> None:
    table = pa.table({"a": [1, 2, None], "b": ["x", None, "z"]})
    write_table_atomic(table, tmp_path / name)
    assert read_data(tmp_path / name).to_pylist() == table.to_pylist()
    assert not list(tmp_path.glob("*.partial"))


def test_an_unwritable_table_names_the_final_file(tmp_path: Path) -> None:
    blocker = tmp_path / "dir"
    blocker.write_text("a file where a directory must be")
    with pytest.raises(DataFileError, match="cannot write the set") as err:
        write_table_atomic(pa.table({"a": [1]}), blocker / "t.csv", failure="cannot write the set")
    assert str(blocker / "t.csv") in err.value.message
