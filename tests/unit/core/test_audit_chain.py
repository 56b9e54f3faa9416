"""The audit hash chain: canonical encoding, and each kind of tampering found where it happened."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from keelwork.core.audit import (
    GENESIS_HASH,
    AuditEntry,
    ChainHead,
    canonical_bytes,
    entry_hash,
    format_ts,
    make_entry,
    parse_ts,
    verify_chain,
)
from keelwork.errors import AuditError


def _chain(n: int) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    head: ChainHead | None = None
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i in range(n):
        entry = make_entry(head, ts=format_ts(t0 + timedelta(seconds=i)), actor=f"user{i % 2}",
                           action="alias.set", target=f"m{i}", details={"to": i, "ü": "é"})
        out.append(entry)
        head = ChainHead(entry.seq, entry.hash, i + 1)
    return out


def test_canonical_encoding_is_documented_form() -> None:
    raw = canonical_bytes(GENESIS_HASH, 1, "2026-03-01T12:00:00.000000Z", "ann", "register",
                          "m:1", {"b": 1, "a": [1, "ü"]})
    assert raw.startswith(b"keelwork.audit.entry.v1\x00")
    body = raw[len(b"keelwork.audit.entry.v1\x00"):].decode("utf-8")
    # Sorted keys, no whitespace, UTF-8 kept as itself.
    assert body == ('{"action":"register","actor":"ann","details":{"a":[1,"ü"],"b":1},'
                    '"kind":"keelwork.audit_entry","prev_hash":"' + GENESIS_HASH + '",'
                    '"seq":1,"target":"m:1","ts":"2026-03-01T12:00:00.000000Z","version":1}')
    assert entry_hash(GENESIS_HASH, 1, "2026-03-01T12:00:00.000000Z", "ann", "register", "m:1",
                      {"a": [1, "ü"], "b": 1}) == hashlib.sha256(raw).hexdigest()


def test_timestamps_are_fixed_width_utc_and_round_trip() -> None:
    moment = datetime(2026, 3, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    text = format_ts(moment)
    assert text == "2026-03-01T12:00:00.000005Z"
    assert parse_ts(text) == moment
    assert format_ts(datetime(2026, 3, 1)) == "2026-03-01T00:00:00.000000Z"  # naive = UTC
    with pytest.raises(AuditError, match="timestamp"):
        parse_ts("2026-03-01 12:00")


def test_a_valid_chain_verifies_and_reports_its_head() -> None:
    entries = _chain(5)
    result = verify_chain(entries)
    assert result.ok and result.checked == 5 and result.reason is None
    assert result.head == ChainHead(5, entries[-1].hash, 5)
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert verify_chain([]).ok


def test_each_field_edit_is_found_at_its_entry() -> None:
    for name, value in (("actor", "mallory"), ("action", "alias.remove"), ("target", "x"),
                        ("ts", "2020-01-01T00:00:00.000000Z"), ("details", {"to": 99})):
        entries = _chain(5)
        entries[2] = dataclasses.replace(entries[2], **{name: value})  # type: ignore[arg-type]
        result = verify_chain(entries)
        assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "hash_mismatch"), name
        assert result.head is not None and result.head.seq == 2


def test_deleted_middle_entry_is_a_gap_at_the_missing_seq() -> None:
    entries = _chain(6)
    del entries[2:4]
    result = verify_chain(entries)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "gap")
    assert "3..4" in result.message


def test_swapped_contents_are_reported_as_reordering() -> None:
    entries = _chain(6)
    a, b = entries[2], entries[3]
    entries[2] = dataclasses.replace(b, seq=3)
    entries[3] = dataclasses.replace(a, seq=4)
    result = verify_chain(entries)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "order")
    assert "entry 4" in result.message


def test_entries_handed_out_of_seq_order_are_found() -> None:
    entries = _chain(4)
    entries[1], entries[2] = entries[2], entries[1]
    result = verify_chain(entries)
    assert (result.first_bad_seq, result.reason) == (2, "gap")  # 3 arrives where 2 belongs
    entries = _chain(4)
    result = verify_chain([entries[0], entries[1], entries[1], entries[2]])
    assert (result.first_bad_seq, result.reason) == (2, "order")


def test_spliced_entry_with_valid_hash_breaks_the_link() -> None:
    entries = _chain(4)
    foreign = make_entry(ChainHead(2, "ab" * 32, 2), ts=entries[2].ts, actor="x", action="y",
                         target="z")
    entries[2] = foreign
    result = verify_chain(entries)
    assert (result.first_bad_seq, result.reason) == (3, "prev_link")


def test_truncated_tail_is_found_only_with_a_head() -> None:
    entries = _chain(5)
    stored = ChainHead(5, entries[-1].hash, 5)
    assert verify_chain(entries[:4]).ok  # the chain alone cannot see it
    result = verify_chain(entries[:4], stored_head=stored)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "truncated")
    assert verify_chain(entries, stored_head=stored).ok
    moved = verify_chain(entries, stored_head=ChainHead(5, "cd" * 32, 5))
    assert moved.reason == "head_mismatch"


def test_anchor_detects_a_rewritten_prefix_and_truncation_below_it() -> None:
    entries = _chain(5)
    anchor = ChainHead(3, entries[2].hash, 3)
    assert verify_chain(entries, anchor=anchor).ok
    # A full rewrite from entry 2 on: internally consistent, but not the anchored history.
    forged: list[AuditEntry] = entries[:1]
    for old in entries[1:]:
        prev = forged[-1]
        forged.append(make_entry(ChainHead(prev.seq, prev.hash, prev.seq), ts=old.ts,
                                 actor="mallory", action=old.action, target=old.target))
    assert verify_chain(forged).ok
    result = verify_chain(forged, anchor=anchor)
    assert (result.first_bad_seq, result.reason) == (3, "anchor_mismatch")
    short = verify_chain(entries[:2], anchor=anchor)
    assert (short.first_bad_seq, short.reason) == (3, "truncated")


def test_suffix_verification_continues_from_a_start_head() -> None:
    entries = _chain(6)
    start = ChainHead(3, entries[2].hash, 3)
    result = verify_chain(entries[3:], start=start)
    assert result.ok and result.head == ChainHead(6, entries[-1].hash, 6)
    assert verify_chain(entries[4:], start=start).reason == "gap"


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": object()}, ["a"]])
def test_details_that_are_not_plain_json_are_refused(bad: object) -> None:
    with pytest.raises(AuditError, match="details"):
        make_entry(None, ts=format_ts(datetime.now(UTC)), actor="a", action="b", target="c",
                   details=bad)  # type: ignore[arg-type]


def test_details_are_normalised_to_what_reads_back() -> None:
    entry = make_entry(None, ts="2026-03-01T12:00:00.000000Z", actor="a", action="b",
                       target="c", details={"t": (1, 2), "n": None})
    assert entry.details == {"t": [1, 2], "n": None}
    assert verify_chain([entry]).ok


def test_empty_actor_is_refused_and_head_round_trips() -> None:
    with pytest.raises(AuditError, match="'actor'"):
        make_entry(None, ts="2026-03-01T12:00:00.000000Z", actor=" ", action="b", target="c")
    head = ChainHead(7, "ab" * 32, 7)
    assert ChainHead.from_dict(json.loads(json.dumps(head.as_dict()))) == head
    with pytest.raises(AuditError, match="'hash'"):
        ChainHead.from_dict({"seq": 1, "hash": "zz", "count": 1})
    with pytest.raises(AuditError, match="'seq'"):
        ChainHead.from_dict({"hash": "ab" * 32})


@pytest.mark.parametrize(("name", "value"), [
    ("actor", b"user0"), ("prev_hash", b"0" * 64), ("ts", 5), ("target", None),
    ("seq", "x3"), ("seq", 3.5),
])
def test_a_field_stored_with_a_wrong_type_breaks_the_chain_at_its_entry(
        name: str, value: object) -> None:
    """a row whose seq was made text, or whose actor or prev_hash was made a blob, raised
    (TypeError from the canonical JSON, or a comparison) instead of failing the check."""
    entries = _chain(5)
    entries[2] = dataclasses.replace(entries[2], **{name: value})  # type: ignore[arg-type]
    result = verify_chain(entries)
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 3, "hash_mismatch")
    assert "changed after it was written" in result.message
    assert (repr(name) if name != "seq" else repr(value)) in result.message
    json.dumps(entries[2].as_dict())  # shown as JSON, whatever the stored type


def test_entries_and_heads_are_read_as_stored() -> None:
    entry = _chain(1)[0]
    row = {**entry.as_dict(), "details": json.dumps(dict(entry.details)), "seq": "x1"}
    stored = AuditEntry.stored(row)
    assert stored.seq == "x1" and not verify_chain([stored]).ok  # type: ignore[comparison-overlap]
    assert AuditEntry.stored({**row, "seq": 1}) == entry
    assert AuditEntry.stored({**row, "details": b"\xff"}).details == {
        "__unparseable__": "b'\\xff'"}
    assert ChainHead.stored(1, entry.hash, 1) == ChainHead(1, entry.hash, 1)
    for bad in (("x", entry.hash, 1), (1, entry.hash.encode(), 1), (1, entry.hash, None)):
        with pytest.raises(AuditError, match="The stored audit head is damaged"):
            ChainHead.stored(*bad)
