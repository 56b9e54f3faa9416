"""Rows as ingestion reads them: a JSON-lines record keeps the keys its line had.

Arrow gives every row every column of the file, so a key that a line leaves out used to come
back as null; the contract then said "must not be null" of an optional field the line simply
did not have (the request check accepts such a record). In CSV an empty cell stays null.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.core.ingest import ChunkOutcome, IngestCounts
from keelwork.service.ingest import ingest_paths


class Recorder:
    """A chunk handler that keeps the rows it is given and stores nothing."""

    kind = "record"
    target = "rows"

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def read_types(self) -> dict[str, Any]:
        return {}

    def check_columns(self, file: Any) -> None:
        pass

    def begin(self, file: Any, ledger: Any, checkpoint: Any) -> None:
        pass

    def prepare(self, file: Any, first_row: int, rows: list[dict[str, Any]],
                checkpoint: Any) -> list[dict[str, Any]]:
        self.rows.extend(rows)
        return rows

    def write(self, conn: Any, chunk: list[dict[str, Any]], file: Any) -> ChunkOutcome:
        return ChunkOutcome(IngestCounts(read=len(chunk), ingested=len(chunk)), [])

    def end(self, file: Any, ledger: Any, checkpoint: Any) -> None:
        pass


def _ingest(tmp_path: Path, data: Path, **options: Any) -> list[dict[str, Any]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        handler = Recorder()
        [result] = ingest_paths(engine, [data], handler, **options)
        assert result.counts.ingested == len(handler.rows)
        return handler.rows
    finally:
        engine.dispose()


LINES = [
    {"a": 1, "b": "x", "note": "n"},
    {"a": 2, "b": "y"},                    # no note: absent, not null
    {"a": 3, "b": None, "note": None},     # explicit nulls stay
    {"b": "z"},                            # no a, no note
    {"a": 5, "b": "w", "note": "m"},
]


@pytest.mark.parametrize(("batch_size", "commit_every"), [(65536, 1000), (2, 1)])
def test_json_lines_rows_keep_the_keys_their_lines_had(tmp_path: Path, batch_size: int,
                                                       commit_every: int) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in LINES) + "\n")
    rows = _ingest(tmp_path, data, batch_size=batch_size, commit_every=commit_every)
    assert rows == LINES


def test_gzip_bom_blank_lines_and_crlf_are_read_as_the_reader_reads_them(
        tmp_path: Path) -> None:
    text = "\ufeff" + "\r\n".join(["", *(json.dumps(r) for r in LINES[:2]), "  ",
                                   *(json.dumps(r) for r in LINES[2:])]) + "\r\n"
    data = tmp_path / "in.jsonl.gz"
    data.write_bytes(gzip.compress(text.encode("utf-8")))
    assert _ingest(tmp_path, data) == LINES


def test_a_csv_empty_cell_is_null(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("a,b,note\n1,x,n\n2,y,\n")
    rows = _ingest(tmp_path, data)
    assert rows[1]["note"] is None and set(rows[1]) == {"a", "b", "note"}


def test_line_keys_look_up_only_rows_with_nulls_going_forwards(tmp_path: Path) -> None:
    from keelwork.service.ingest.files import LineKeys

    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in LINES) + "\n")
    keys = LineKeys(data)
    full = {"a": None, "b": None, "note": None}
    first = [{**full, **LINES[0]}, {**full, **LINES[1]}]
    keys.drop_absent(first, 0)
    assert first == LINES[:2]
    later = [{**full, **LINES[3]}, {**full, **LINES[4]}]  # rows 2 skipped (a resumed job)
    keys.drop_absent(later, 3)
    assert later == LINES[3:]


def test_line_keys_read_nothing_when_no_row_holds_a_null(tmp_path: Path) -> None:
    from keelwork.service.ingest.files import LineKeys

    keys = LineKeys(tmp_path / "never-opened.jsonl")
    rows = [{"a": 1}, {"a": 2}]
    keys.drop_absent(rows, 0)
    assert rows == [{"a": 1}, {"a": 2}]
