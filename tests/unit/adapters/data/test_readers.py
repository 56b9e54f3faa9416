"""keelwork.adapters.data.readers: every format, stable schemas, and errors that name the line."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from keelwork.adapters.data import delimited
from keelwork.adapters.data.readers import (
    detect_format,
    iter_batches,
    read_header,
    read_table,
    row_count,
)
from keelwork.core.contracts.columns import is_mixed
from keelwork.errors import DataFileError

N = 10_000


def sample_rows(n: int = N) -> list[dict[str, Any]]:
    return [{"id": i, "x": i / 7, "flag": i % 3 == 0, "color": ["red", "green", "blue"][i % 3],
             "note": f"row {i}, \"quoted\""} for i in range(n)]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` in the format of ``path``'s suffix (with pyarrow / json, not our code)."""
    table = pa.Table.from_pylist(rows)
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        pq.write_table(table, path)
        return path
    if name.endswith(".jsonl"):
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    else:
        sink = pa.BufferOutputStream()
        delimiter = "\t" if name.endswith(".tsv") else ","
        pacsv.write_csv(table, sink, pacsv.WriteOptions(delimiter=delimiter))
        data = sink.getvalue().to_pybytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def raises(path: Path, **kwargs: Any) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        read_table(path, **kwargs)
    assert info.value.path == str(path)
    return info.value


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make CSV blocks tiny, so that a 10k-row file spans many blocks (the streaming paths)."""
    monkeypatch.setattr(delimited, "_BLOCK", 4096)


# --------------------------------------------------------------------------- formats
@pytest.mark.parametrize(("name", "fmt"), [
    ("a.csv", "csv"), ("a.CSV", "csv"), ("a.tsv", "tsv"), ("a.parquet", "parquet"),
    ("a.pq", "parquet"), ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.csv.gz", "csv"),
    ("dir.v2/a.b.jsonl.gz", "jsonl")])
def test_detect_format_from_the_suffix(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.gz", "a.parquet.gz", "a.json"])
def test_unknown_suffix_is_refused_with_the_list(name: str) -> None:
    with pytest.raises(DataFileError, match=r"\.csv, \.tsv, \.parquet"):
        detect_format(name)


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.parquet", "d.jsonl", "d.csv.gz",
                                  "d.jsonl.gz"])
def test_every_format_reads_the_same_table(tmp_path: Path, name: str) -> None:
    rows = sample_rows()
    path = write(tmp_path / name, rows)
    table = read_table(path)
    assert table.to_pylist() == rows
    assert table.schema.field("id").type == pa.int64()
    assert read_header(path) == list(rows[0])
    assert read_table(path, columns=["note", "id"]).column_names == ["note", "id"]


@pytest.mark.parametrize("name", ["d.csv", "d.parquet", "d.jsonl"])
def test_iter_batches_counts_rows_and_keeps_one_schema(tmp_path: Path, name: str,
                                                       small_blocks: None) -> None:
    rows = sample_rows()
    path = write(tmp_path / name, rows)
    seen, schemas = [], set()
    for start, batch in iter_batches(path, batch_size=3000):
        assert start == len(seen)
        assert 0 < batch.num_rows <= 3000
        schemas.add(batch.schema)
        seen += batch.to_pylist()
    assert seen == rows
    assert len(schemas) == 1
    assert pa.Table.from_batches([b for _, b in iter_batches(path)]).num_rows == N


def test_row_count_is_known_for_parquet_only(tmp_path: Path) -> None:
    assert row_count(write(tmp_path / "d.parquet", sample_rows(5))) == 5
    assert row_count(write(tmp_path / "d.csv", sample_rows(5))) is None


# --------------------------------------------------------------------------- missing, empty
def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "no such file" in raises(tmp_path / "nope.csv").message
    (tmp_path / "dir.csv").mkdir()
    assert "directory" in raises(tmp_path / "dir.csv").message


@pytest.mark.parametrize("name", ["e.csv", "e.jsonl", "e.parquet"])
def test_empty_file_says_no_header(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert "empty (no header, no rows)" in raises(tmp_path / name).message


def test_header_without_rows_says_no_rows(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b\n")
    assert "no rows" in raises(tmp_path / "h.csv").message
    (tmp_path / "b.jsonl").write_text("\n\n  \n")
    assert "no rows" in raises(tmp_path / "b.jsonl").message
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), tmp_path / "z.parquet")
    assert "no rows" in raises(tmp_path / "z.parquet").message
    with pytest.raises(DataFileError, match="no rows"):
        list(iter_batches(tmp_path / "h.csv"))


def test_not_a_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("a,b\n1,2\n")
    assert "cannot be read as Parquet" in raises(tmp_path / "x.parquet").message


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", sample_rows(3))
    err = raises(path, columns=["id", "age"])
    assert err.column == "age"
    assert "has no column 'age'" in err.message


# --------------------------------------------------------------------------- CSV problems
def test_ragged_csv_line_is_the_physical_line(tmp_path: Path) -> None:
    # A quoted value spanning two lines: row 2 is on lines 3-4, the ragged row on line 5.
    path = tmp_path / "r.csv"
    path.write_text('a,b,c\n1,2,3\n4,"two\nlines",6\n7,8\n9,10,11\n')
    err = raises(path)
    assert (err.line, err.message) == (5, f"{path}, line 5: a row must have 3 fields like "
                                          "the header; got 2.")


def test_ragged_line_in_a_compressed_tsv(tmp_path: Path) -> None:
    path = tmp_path / "r.tsv.gz"
    path.write_bytes(gzip.compress(b"a\tb\n" + b"1\t2\n" * 500 + b"1\t2\t3\n"))
    assert raises(path).line == 502


def test_wrong_encoding_names_line_column_byte_and_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes("name,city\nAnn,Paris\nBob,Mälmo\n".encode("latin-1"))
    err = raises(path)
    assert (err.line, err.column) == (3, "city")
    assert "the byte at offset 25 is not UTF-8" in err.message and "iconv" in err.message


def test_wrong_encoding_deep_in_a_big_csv(tmp_path: Path, small_blocks: None) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b"a,b\n" + b"1,x\n" * 5000 + "2,é\n".encode("latin-1"))
    err = raises(path)
    assert (err.line, err.column) == (5002, "b")


def test_duplicate_header_names(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,a\n1,2,3\n")
    err = raises(tmp_path / "d.csv")
    assert (err.line, err.column) == (1, "a")
    assert "columns 1 and 3" in err.message


def test_bom_nulls_nan_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(b'\xef\xbb\xbfx,d,s\nNaN,2020-01-02,NA\ninf,2021-03-04,""\n,2022-05-06,\n')
    table = read_table(path)
    assert table.column_names == ["x", "d", "s"]
    x = table.column("x").to_pylist()
    assert math.isnan(x[0]) and x[1] == math.inf and x[2] is None
    assert table.column("d").to_pylist() == ["2020-01-02", "2021-03-04", "2022-05-06"]
    assert table.column("s").to_pylist() == [None, "", None]


def test_csv_column_of_numbers_then_text_is_text_in_every_batch(tmp_path: Path,
                                                               small_blocks: None) -> None:
    path = tmp_path / "m.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(5000)) + "abc,1\n")
    batches = [b for _, b in iter_batches(path, batch_size=1000)]
    assert {b.schema.field("a").type for b in batches} == {pa.string()}
    assert {b.schema.field("b").type for b in batches} == {pa.int64()}
    assert batches[-1].column("a").to_pylist()[-1] == "abc"
    assert read_table(path).column("a").to_pylist()[:2] == ["0", "1"]


def test_csv_types_convert_and_a_bad_cell_makes_the_column_mixed(tmp_path: Path,
                                                                 small_blocks: None) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,z\n" + "".join(f"{i},{i},0{i}\n" for i in range(3000))
                    + "abc,+2.5,x\n")
    types = {"a": pa.int64(), "b": pa.float64(), "z": pa.string()}
    batches = [b for _, b in iter_batches(path, batch_size=1000, types=types)]
    assert len({b.schema for b in batches}) == 1
    table = pa.Table.from_batches(batches)
    assert is_mixed(table.schema.field("a").type)
    assert table.schema.field("b").type == pa.float64()
    assert table.column("a").to_pylist()[-2:] == [2999, "abc"]
    assert table.column("b").to_pylist()[-1] == 2.5
    assert table.column("z").to_pylist()[:2] == ["00", "01"]  # text kept, not 0 and 1
    booleans = tmp_path / "f.csv"
    booleans.write_text("f,g\ntrue,1\nFalse,1\n,1\nyes,1\n")
    column = read_table(booleans, types={"f": pa.bool_()}).column("f")
    assert column.to_pylist() == [True, False, None, "yes"]


# --------------------------------------------------------------------------- JSON lines
def test_invalid_json_line_names_line_and_character(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,}\n')
    err = raises(path)
    assert err.line == 3 and "character 9" in err.message and "not valid JSON" in err.message


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    err = raises(path)
    assert err.line == 2 and "must be a JSON object; got an array" in err.message


def test_json_lines_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"a": "ok"}\n' + '{"a": "\xe9t\xe9"}\n'.encode("latin-1"))
    err = raises(path)
    assert err.line == 2 and "the byte at offset 19 is not UTF-8" in err.message


def test_json_lines_mixed_types_and_drift_keep_one_schema(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"n": i, "s": "x"} for i in range(2500)]
    rows += [{"n": 0.5, "s": 3, "late": True}, {"n": None, "s": None}]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    batches = [b for _, b in iter_batches(path, batch_size=1000)]
    assert len({b.schema for b in batches}) == 1
    table = pa.Table.from_batches(batches)
    assert table.schema.field("n").type == pa.float64()
    assert is_mixed(table.schema.field("s").type)
    assert table.column("s").to_pylist()[-3:] == ["x", 3, None]
    assert table.column("late").to_pylist()[:1] == [None]
    assert table.column("late").to_pylist()[-2] is True
    assert table.num_rows == len(rows)
