"""Sealing snapshot rows under per-subject keys: exact round trip of every canonical type,
erased rows (key gone) dropped or nulled, a row bound to its snapshot, unsealable schemas."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from keelwork.adapters.stores.dataset_sealing import (
    KEY_ID_COLUMN,
    can_seal,
    key_ids,
    open_part,
    redacted,
    schema_of,
    schema_text,
    scoped,
    seal_part,
)
from keelwork.adapters.stores.subject_keys import SubjectKeys, key_id
from keelwork.core.datasets import canonicalize

SECRET = b"s" * 32


def _table() -> pa.Table:
    return canonicalize(pa.table({
        "who": ["ann", "bob", None, "ann"],
        "x": [1.5, math.nan, None, -1e300],
        "n": pa.array([1, 2**62, None, -3], pa.int64()),
        "ok": [True, False, None, True],
        "at": pa.array([0, 1_700_000_000_000_001, None, 5], pa.int64()).cast(
            pa.timestamp("us", "UTC")),
        "day": pa.array([0, 19_000, None, 1], pa.int32()).cast(pa.date32()),
        "price": pa.array([Decimal("1.25"), None, Decimal("-3.50"), Decimal("0.00")],
                          pa.decimal128(9, 2)),
        "blob": [b"\x00\xff", None, b"", b"zz"],
        "tags": [["a", "b"], None, [], ["c"]],
        "pt": [{"u": 1, "v": "w"}, None, {"u": None, "v": "q"}, {"u": 2, "v": None}],
    }))


def test_rows_round_trip_exactly_and_hold_no_value_in_clear(tmp_path: Path) -> None:
    keys = SubjectKeys(tmp_path / "k.db", SECRET)
    table = _table()
    assert can_seal(table.schema)
    sealed = seal_part(table, "who", "sha", keys)
    assert sealed.column_names == [KEY_ID_COLUMN, "__keel_row"]
    ids = key_ids(sealed)
    assert ids[0] == ids[3] == key_id(SECRET, scoped("ann")) != ids[1] and ids[2] is None
    stored = b"".join(v for v in sealed.column("__keel_row").to_pylist())
    assert b"ann" not in stored and b"bob" not in stored and b'"eno="' not in stored
    back, gone = open_part(sealed, schema_of(schema_text(table.schema)), "sha", keys)
    assert gone == 0 and back.schema == table.schema
    got, want = back.to_pylist(), table.to_pylist()
    assert math.isnan(got[1]["x"]) and math.isnan(want[1]["x"])
    got[1]["x"] = want[1]["x"] = 0.0
    assert got == want


def test_a_destroyed_key_drops_or_nulls_its_rows_and_a_row_opens_only_in_its_snapshot(
        tmp_path: Path) -> None:
    keys = SubjectKeys(tmp_path / "k.db", SECRET)
    table = _table()
    sealed = seal_part(table, "who", "sha", keys)
    assert keys.forget(key_id(SECRET, scoped("ann")))
    reader = SubjectKeys(tmp_path / "k.db")  # reading needs no subject key
    back, gone = open_part(sealed, table.schema, "sha", reader)
    assert gone == 2 and back.column("who").to_pylist() == ["bob", None]
    nulled, _ = open_part(sealed, table.schema, "sha", reader, erased="null")
    assert nulled.num_rows == 4 and nulled.slice(0, 1).to_pylist()[0] == dict.fromkeys(
        table.column_names)
    # Moved into another snapshot (another content hash), bob's row does not open either.
    other, gone = open_part(sealed, table.schema, "other-sha", reader)
    assert gone == 3 and other.column("who").to_pylist() == [None]
    # No key store at all: only the rows without a subject read.
    alone, gone = open_part(sealed, table.schema, "sha", None)
    assert (alone.num_rows, gone) == (1, 3)


def test_retention_of_the_log_key_leaves_the_snapshot_key(tmp_path: Path) -> None:
    keys = SubjectKeys(tmp_path / "k.db", SECRET)
    seal_part(_table(), "who", "sha", keys)
    keys.ensure(["ann"])  # the prediction log's key of ann
    assert keys.forget(key_id(SECRET, "ann"))
    assert key_id(SECRET, scoped("ann")) in keys.keys([key_id(SECRET, scoped("ann"))])


def test_a_schema_the_codec_cannot_carry_is_not_sealed() -> None:
    assert not can_seal(pa.schema([("m", pa.map_(pa.string(), pa.int64()))]))
    assert not can_seal(pa.schema([("l", pa.list_(pa.timestamp("us")))]))
    assert can_seal(pa.schema([("l", pa.list_(pa.struct([("a", pa.float64())])))]))


def test_a_sealed_snapshots_profile_shows_no_text_value() -> None:
    from keelwork.core.datasets import compute_profile

    table = _table()
    assert redacted(table.schema, "who", sealed=False) == ["who"]
    hidden = redacted(table.schema, "who", sealed=True)
    assert hidden == ["who"]  # _table's only text column is the subject's
    people = canonicalize(pa.table({"who": ["a", "b"], "mail": ["x@qz.org", "y@qz.org"],
                                    "n": [1, 2]}))
    assert redacted(people.schema, "who", sealed=True) == ["who", "mail"]
    shown = str(compute_profile(people, redact=redacted(people.schema, "who", sealed=False))
                .as_dict())
    assert "x@qz.org" in shown  # what the profile of a clear snapshot shows
    kept = str(compute_profile(people, redact=redacted(people.schema, "who", sealed=True))
               .as_dict())
    assert "qz.org" not in kept and "'n'" in kept
