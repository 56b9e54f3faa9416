"""The hash chain of the audit log: canonical encoding, entry hashes and verification.

Every entry commits to the one before it, so editing, deleting or reordering a stored entry
breaks the chain from that point on; :func:`verify_chain` finds the first break and says what
kind it is.

Canonical encoding (version 1), the bytes an entry's hash is taken over::

    SHA-256( b"keelwork.audit.entry.v1\\x00" || JSON )

where JSON is the UTF-8 encoding of the object ``{"action", "actor", "details", "kind",
"prev_hash", "seq", "target", "ts", "version"}`` written with sorted keys, no whitespace
(``separators=(",", ":")``), non-ASCII characters as themselves (``ensure_ascii=False``) and NaN /
infinity refused. ``kind`` is ``"keelwork.audit_entry"`` and ``version`` is ``1``. ``ts`` is
a UTC timestamp written ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fractional digits, so the
text is fixed-width and sorts chronologically); ``prev_hash`` is the previous entry's hash as
64 lower-case hex digits, :data:`GENESIS_HASH` (64 zeros) for the first entry. ``details`` is
any JSON object (``{}`` when there are none). The domain prefix keeps an entry hash from ever
equalling a hash taken for another purpose (API keys, Merkle nodes) over the same bytes.

What the chain alone detects, and what it cannot:

* an edited field of a stored entry -> ``hash_mismatch`` at that entry;
* a deleted entry in the middle -> ``gap`` at the first missing sequence number;
* two entries swapped (rows reordered, or their contents exchanged under fixed numbers) ->
  ``order`` at the first moved entry;
* an entry whose own hash fits but whose ``prev_hash`` is not its predecessor's ->
  ``prev_link`` (e.g. an entry spliced in from another log);
* deleting the *last* entries leaves a valid shorter chain: only a head stored elsewhere
  (:class:`ChainHead`, checked by :func:`check_head`) shows it;
* whoever can rewrite every row *and* the stored head can forge a whole new chain: only an
  anchor kept outside the database (a copied head) detects that, up to the anchored entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from keelwork.errors import AuditError

#: ``kind`` and ``version`` written into every entry's canonical form.
ENTRY_KIND = "keelwork.audit_entry"
ENTRY_VERSION = 1
#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
_DOMAIN = b"keelwork.audit.entry.v1\x00"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

#: Why a chain failed to verify.
Reason = Literal["hash_mismatch", "gap", "order", "prev_link", "truncated", "head_mismatch",
                 "anchor_mismatch", "checkpoint_mismatch"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored entry of the audit log."""

    seq: int
    ts: str
    actor: str
    action: str
    target: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON can hold it (a field stored with a wrong type, say bytes, shown
        as its ``repr``)."""
        return {"seq": _plain(self.seq), "ts": _plain(self.ts), "actor": _plain(self.actor),
                "action": _plain(self.action), "target": _plain(self.target),
                "details": dict(self.details), "prev_hash": _plain(self.prev_hash),
                "hash": _plain(self.hash)}

    @classmethod
    def stored(cls, row: Mapping[str, Any]) -> AuditEntry:
        """The entry as a store row holds it, every field kept as found, so that
        :func:`verify_chain` reports a tampered type (a text ``seq``, bytes where text
        belongs) at its entry instead of failing on it; ``details`` is the stored JSON text."""
        seq, text = row["seq"], row["details"]
        try:
            details = json.loads(text)
        except (TypeError, ValueError):
            # Left as found: the hash check then reports the entry as changed.
            details = {"__unparseable__": _plain(text)}
        if not isinstance(details, dict):
            details = {"__not_an_object__": details}
        return cls(seq=seq, ts=row["ts"], actor=row["actor"], action=row["action"],
                   target=row["target"], details=details, prev_hash=row["prev_hash"],
                   hash=row["hash"])


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The latest entry's sequence number and hash, plus how many entries the chain holds.

    Kept beside the log (``audit_head``) it detects a truncated tail; copied outside the
    database (an anchor) it also pins every entry up to ``seq`` against a rewrite.
    """

    seq: int
    hash: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "keelwork.audit_head", "version": 1, "seq": self.seq,
                "hash": self.hash, "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChainHead:
        """Read :meth:`as_dict`'s form.

        Raises:
            AuditError: a field is missing or of the wrong type.
        """
        try:
            seq, digest, count = data["seq"], data["hash"], data["count"]
        except (KeyError, TypeError):
            raise AuditError("An audit head must be an object with 'seq', 'hash' and "
                             f"'count'; got {_short(data)}.") from None
        if not (isinstance(seq, int) and isinstance(count, int) and _is_hex64(digest)):
            raise AuditError("An audit head needs integer 'seq' and 'count' and a 64-hex-digit "
                             f"'hash'; got {_short(data)}.")
        return cls(seq=seq, hash=digest, count=count)

    @classmethod
    def stored(cls, seq: Any, digest: Any, count: Any) -> ChainHead:
        """The head as a store row holds it.

        Raises:
            AuditError: a field has the wrong type (the row was changed by hand).
        """
        if not (_is_int(seq) and _is_int(count) and isinstance(digest, str)):
            raise AuditError(f"The stored audit head is damaged: it needs integer 'seq' and "
                             f"'count' and a text 'hash'; got seq {_short(seq)}, hash "
                             f"{_short(digest)}, count {_short(count)}.")
        return cls(seq=seq, hash=digest, count=count)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking a chain.

    Attributes:
        ok: Every check passed.
        checked: How many entries were read.
        first_bad_seq: The sequence number of the first bad (or first missing) entry.
        reason: What is wrong there (see :data:`Reason`).
        message: One sentence for a person.
        head: The last entry that verified (``None`` for an empty or immediately broken chain).
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: Reason | None = None
    message: str = ""
    head: ChainHead | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason, "message": self.message,
                "head": self.head.as_dict() if self.head else None}


def format_ts(moment: datetime) -> str:
    """The canonical timestamp text of ``moment`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def parse_ts(text: str) -> datetime:
    """The inverse of :func:`format_ts`.

    Raises:
        AuditError: ``text`` is not in the canonical form.
    """
    try:
        return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise AuditError(f"An audit timestamp must look like 2026-01-31T12:00:00.000000Z; "
                         f"got {text!r}.") from None


def canonical_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """``details`` as the plain JSON object that is stored and hashed.

    Tuples become lists; anything else that JSON cannot hold is refused rather than turned
    into text, so what is stored reads back as what was hashed.

    Raises:
        AuditError: not a mapping with string keys, or a value is not plain JSON.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise AuditError(f"Audit details must be an object; got {type(details).__name__}.")
    try:
        text = json.dumps(dict(details), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"Audit details must be plain JSON (strings, numbers, booleans, "
                         f"null, lists, objects with string keys): {exc}.") from None
    value: dict[str, Any] = json.loads(text)
    return value


def canonical_bytes(prev_hash: str, seq: int, ts: str, actor: str, action: str, target: str,
                    details: Mapping[str, Any] | None) -> bytes:
    """The bytes an entry's hash is taken over (see the module docstring), domain included."""
    body = {"kind": ENTRY_KIND, "version": ENTRY_VERSION, "seq": seq, "ts": ts, "actor": actor,
            "action": action, "target": target, "details": canonical_details(details),
            "prev_hash": prev_hash}
    return _DOMAIN + dumps_canonical(body).encode("utf-8")


def dumps_canonical(value: Any) -> str:
    """Sorted-key, compact, UTF-8-preserving JSON (the form stored and hashed)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(prev_hash: str, seq: int, ts: str, actor: str, action: str, target: str,
               details: Mapping[str, Any] | None = None) -> str:
    """SHA-256 (hex) of one entry's canonical form; it covers ``prev_hash``, hence the chain."""
    return hashlib.sha256(canonical_bytes(prev_hash, seq, ts, actor, action, target,
                                          details)).hexdigest()


def make_entry(prev: ChainHead | None, *, ts: str, actor: str, action: str, target: str,
               details: Mapping[str, Any] | None = None) -> AuditEntry:
    """The entry that follows ``prev`` (``None``: the first entry of a log).

    Raises:
        AuditError: an empty actor/action/target, or details that are not plain JSON.
    """
    for name, value in (("actor", actor), ("action", action), ("target", target)):
        if not isinstance(value, str) or not value.strip():
            raise AuditError(f"An audit entry needs a non-empty '{name}'; got {value!r}.")
    clean = canonical_details(details)
    seq = (prev.seq if prev else 0) + 1
    prev_hash = prev.hash if prev else GENESIS_HASH
    digest = entry_hash(prev_hash, seq, ts, actor, action, target, clean)
    return AuditEntry(seq, ts, actor, action, target, clean, prev_hash, digest)


def verify_chain(entries: Sequence[AuditEntry], *, start: ChainHead | None = None,
                 stored_head: ChainHead | None = None,
                 anchor: ChainHead | None = None) -> VerifyResult:
    """Check a chain and point at the first bad entry.

    Args:
        entries: The entries in the order they are stored (by sequence number).
        start: The entry before ``entries[0]`` when checking a suffix (``None``: from genesis).
        stored_head: The head kept beside the log; a shorter chain means a truncated tail.
        anchor: A head copied outside the database earlier; the entry at its ``seq`` must
            still exist with its hash.

    Returns:
        The result; ``ok`` is False at the first problem found, in chain order.
    """
    positions = _content_positions(entries, start)
    expected_seq = (start.seq if start else 0) + 1
    expected_prev = start.hash if start else GENESIS_HASH
    head = start
    anchored = anchor is None or anchor.seq == 0 or (start is not None
                                                     and anchor.seq <= start.seq)
    for checked, entry in enumerate(entries):
        problem = _check_entry(entry, expected_seq, expected_prev, positions)
        if problem is not None:
            seq, reason, message = problem
            return VerifyResult(False, checked + 1, seq, reason, message, head)
        if anchor is not None and entry.seq == anchor.seq:
            if entry.hash != anchor.hash:
                return VerifyResult(
                    False, checked + 1, entry.seq, "anchor_mismatch",
                    f"Entry {entry.seq} has hash {entry.hash[:12]}..., but the anchor recorded "
                    f"{anchor.hash[:12]}...: the log was rewritten up to here.", head)
            anchored = True
        head = ChainHead(entry.seq, entry.hash, (head.count if head else 0) + 1)
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    checked = len(entries)
    if not anchored and anchor is not None:
        return VerifyResult(False, checked, anchor.seq, "truncated",
                            f"The anchor names entry {anchor.seq}, but the log ends at entry "
                            f"{expected_seq - 1}: entries were removed from the end.", head)
    if stored_head is not None:
        last_seq = expected_seq - 1
        if stored_head.seq > last_seq:
            return VerifyResult(False, checked, last_seq + 1, "truncated",
                                f"The stored head names entry {stored_head.seq}, but the log "
                                f"ends at entry {last_seq}: entries {last_seq + 1}.."
                                f"{stored_head.seq} were removed from the end.", head)
        if stored_head.seq < last_seq or stored_head.hash != expected_prev:
            return VerifyResult(False, checked, min(stored_head.seq, last_seq) or None,
                                "head_mismatch",
                                f"The stored head (entry {stored_head.seq}, "
                                f"{stored_head.hash[:12]}...) does not match the log's last "
                                f"entry ({last_seq}, {expected_prev[:12]}...).", head)
    return VerifyResult(True, checked, None, None,
                        f"{checked} entries verified." if checked else "The log is empty.", head)


def _check_entry(entry: AuditEntry, expected_seq: int, expected_prev: str,
                 positions: Mapping[str, int]) -> tuple[int, Reason, str] | None:
    if not _is_int(entry.seq):
        return (expected_seq, "hash_mismatch",
                f"The entry after entry {expected_seq - 1} has the sequence number "
                f"{_short(entry.seq)}, not an integer: it was changed after it was written.")
    wrong = [name for name in ("ts", "actor", "action", "target", "prev_hash", "hash")
             if not isinstance(getattr(entry, name), str)]
    if wrong:
        return (entry.seq, "hash_mismatch",
                f"Entry {entry.seq} holds {', '.join(repr(w) for w in wrong)} as "
                f"{type(getattr(entry, wrong[0])).__name__}, not text: it was changed after "
                "it was written.")
    if entry.seq < expected_seq:
        return (entry.seq, "order",
                f"Entry {entry.seq} comes after entry {expected_seq - 1}: entries are out of "
                "order or repeated.")
    if entry.seq > expected_seq:
        missing = (f"entry {expected_seq} is" if entry.seq == expected_seq + 1
                   else f"entries {expected_seq}..{entry.seq - 1} are")
        return (expected_seq, "gap",
                f"{missing[0].upper()}{missing[1:]} missing (deleted): entry {entry.seq} follows "
                f"entry {expected_seq - 1}.")
    recomputed = entry_hash(entry.prev_hash, entry.seq, entry.ts, entry.actor, entry.action,
                            entry.target, entry.details)
    if recomputed != entry.hash:
        moved_from = _original_seq(entry, positions)
        if moved_from is not None:
            return (entry.seq, "order",
                    f"Entry {entry.seq} holds the content of entry {moved_from}: entries were "
                    "reordered.")
        return (entry.seq, "hash_mismatch",
                f"Entry {entry.seq} does not match its hash: a field was changed after it was "
                f"written (stored {entry.hash[:12]}..., computed {recomputed[:12]}...).")
    if entry.prev_hash != expected_prev:
        return (entry.seq, "prev_link",
                f"Entry {entry.seq} does not link to entry {expected_seq - 1}: its prev_hash is "
                f"{entry.prev_hash[:12]}..., entry {expected_seq - 1}'s hash is "
                f"{expected_prev[:12]}....")
    return None


def _content_positions(entries: Sequence[AuditEntry], start: ChainHead | None) -> dict[str, int]:
    """Entry hash -> the sequence number its content was written under, by following links.

    Each entry names its predecessor's hash, so walking ``prev_hash`` links from the start
    numbers the contents as they were written, whatever numbers the rows carry now.
    """
    by_prev: dict[str, AuditEntry] = {}
    for entry in entries:
        by_prev.setdefault(entry.prev_hash, entry)
    seq, digest = (start.seq, start.hash) if start else (0, GENESIS_HASH)
    positions: dict[str, int] = {}
    while digest in by_prev and len(positions) < len(entries):
        entry = by_prev[digest]
        seq += 1
        positions[entry.hash] = seq
        digest = entry.hash
    return positions


def _original_seq(entry: AuditEntry, positions: Mapping[str, int]) -> int | None:
    """The sequence number this entry's content was written under, when it was moved."""
    candidate = positions.get(entry.hash)
    if candidate is None or candidate == entry.seq:
        return None
    again = entry_hash(entry.prev_hash, candidate, entry.ts, entry.actor, entry.action,
                       entry.target, entry.details)
    return candidate if again == entry.hash else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """``value`` when JSON holds it as text or a number, else its ``repr``."""
    return value if isinstance(value, str | int | float | None) else repr(value)


def _is_hex64(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


__all__ = [
    "ENTRY_KIND",
    "ENTRY_VERSION",
    "GENESIS_HASH",
    "AuditEntry",
    "ChainHead",
    "Reason",
    "VerifyResult",
    "canonical_bytes",
    "canonical_details",
    "dumps_canonical",
    "entry_hash",
    "format_ts",
    "make_entry",
    "parse_ts",
    "verify_chain",
]
