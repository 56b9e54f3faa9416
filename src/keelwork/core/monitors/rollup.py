"""A rollup: what a monitoring window needs from a stretch of the log, labels left out.

A window's drift, segment drift and CBPE estimate are functions of its predictions alone:
merged profiles (exact counts, :mod:`keelwork.core.monitors.profile`), per-segment profiles
and row counts, the columns the predictions carried, and the multiset of their scores. All of
that adds up, so a window is the sum of the rollups of the buckets it holds, in any order:
:func:`combine` is exact for every count, and the scores are kept as a multiset (their
order never matters: CBPE reads them sorted, see :func:`canonical_scores`). What does not add
up from predictions alone -- ground truth arrives late and is joined at run time -- is not in a
rollup.

``seen`` counts every logged row the rollup folded (answered or not): a reader knows that a
rollup covers a bucket exactly when ``seen`` equals the log's count of rows there. ``unscored``
counts answered rows whose outputs carry no score (a run that scores them again cannot use
the rollup). ``layout`` fingerprints what the rows were profiled against (see
:func:`layout_fingerprint`); rollups of different layouts are never merged.

Scores a run computed again from the logged inputs (a classifier that logs only its label)
are also kept per prediction -- ``kept_ids`` (:func:`id_key` of each prediction id) and
``kept_proba`` (its probability row, ``kept_width`` floats) -- so that a later run finds the
scores of the predictions labelled since, without the model.

Stored form: :meth:`Rollup.to_bytes` (orjson header + raw little-endian float64 scores, then
the kept ids as uint64 and their probability rows as float64), stamped with
:data:`ROLLUP_KIND` and :data:`ROLLUP_VERSION` (version 1: no kept scores; version 2: a
non-finite moment written as ``null``, read as unknown; version 3: written as ``"inf"`` etc.,
see :mod:`keelwork.core.monitors.moments`).

Pure logic: numpy is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from keelwork.core.monitors.moments import decode_moment, encode_moment
from keelwork.core.monitors.profile import (
    ColumnProfile,
    ProfileError,
    TableProfile,
    check_kind,
    merge_profiles,
)

ROLLUP_KIND = "keelwork.monitor-rollup"
ROLLUP_VERSION = 3
_HEADER = struct.Struct("<I")


@dataclass(slots=True)
class Rollup:
    """Additive monitoring state of some logged predictions (see the module docstring).

    ``profile`` is None while no answered prediction was folded. ``segments`` maps
    ``(field, value)`` to ``[profile, predictions]``. ``scores`` holds one float per scored
    prediction (binary) or ``width`` floats per prediction (a multi-class probability row),
    flattened, in no particular order.
    """

    layout: str
    seen: int = 0
    rows: int = 0
    skipped: int = 0
    unscored: int = 0
    profile: TableProfile | None = None
    segments: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    columns: set[str] = field(default_factory=set)
    versions: set[int] = field(default_factory=set)
    width: int = 1
    #: A list or a 1-D float array (what was read back); see :func:`scores_array`.
    scores: Any = field(default_factory=list)
    #: Rows scored again: :func:`id_key` per prediction and its probabilities (flattened).
    kept_ids: Any = field(default_factory=list)
    kept_proba: Any = field(default_factory=list)
    kept_width: int = 0

    def to_bytes(self) -> bytes:
        """The stored form (see the module docstring); :func:`rollup_from_bytes` reads it."""
        import numpy as np

        head = orjson.dumps({
            "kind": ROLLUP_KIND, "version": ROLLUP_VERSION, "layout": self.layout,
            "seen": self.seen, "rows": self.rows, "skipped": self.skipped,
            "unscored": self.unscored, "width": self.width,
            "profile": _pack(self.profile) if self.profile is not None else None,
            "segments": [[f, v, n, _pack(p)] for (f, v), (p, n) in self.segments.items()],
            "columns": sorted(self.columns), "versions": sorted(self.versions),
            "n_scores": len(self.scores), "kept": len(self.kept_ids),
            "kept_width": self.kept_width})
        body = (np.asarray(self.scores, dtype="<f8").tobytes()
                + np.asarray(self.kept_ids, dtype="<u8").tobytes()
                + np.asarray(self.kept_proba, dtype="<f8").tobytes())
        return _HEADER.pack(len(head)) + head + body

    def kept_scores(self, keys: Sequence[int]) -> list[list[float] | None]:
        """The kept probability row of each :func:`id_key` in ``keys`` (None: not kept; an
        id kept twice: its first row).

        The few keys asked for (a window's labelled predictions) mark a bit table by their
        low bits; only the kept ids (up to millions) that hit a marked bit are looked up
        among the sorted keys: no sort of, nor binary search for, every kept id.
        """
        import numpy as np

        if not len(self.kept_ids) or not len(keys):
            return [None] * len(keys)
        want = np.asarray(keys, dtype=np.uint64)
        order = np.argsort(want, kind="stable")
        ranked = want[order]
        ids = np.asarray(self.kept_ids, dtype=np.uint64)
        bits = 1 << max(10, min(24, (8 * len(keys)).bit_length()))
        low = np.uint64(bits - 1)
        marked = np.zeros(bits, dtype=bool)
        marked[(want & low).astype(np.intp)] = True
        maybe = np.flatnonzero(marked[(ids & low).astype(np.intp)])
        at = np.minimum(np.searchsorted(ranked, ids[maybe]), len(ranked) - 1)
        same = ranked[at] == ids[maybe]
        hit, at = maybe[same], at[same]  # kept rows whose id was asked for, and where
        rows = np.asarray(self.kept_proba, dtype=np.float64).reshape(-1, self.kept_width)
        row_of: dict[int, list[float]] = {}
        for pos, row in zip(at.tolist(), rows[hit].tolist(), strict=True):
            row_of.setdefault(pos, row)
        # Each asked key -> the first of its run of equal sorted keys (where hits landed).
        first = np.searchsorted(ranked, ranked)
        out: list[list[float] | None] = [None] * len(keys)
        for k, pos in zip(order.tolist(), first.tolist(), strict=True):
            out[k] = row_of.get(pos)
        return out


def id_key(prediction_id: str) -> int:
    """A prediction id as 64 bits (BLAKE2b): how kept scores are found again."""
    return int.from_bytes(hashlib.blake2b(prediction_id.encode(), digest_size=8).digest(),
                          "little")


def combine(layout: str, parts: Sequence[Rollup]) -> Rollup:
    """The sum of ``parts`` (equal to merging them one by one, in order, into an empty rollup
    of ``layout``), each profile built once rather than once per part.

    Raises:
        ProfileError: a part was profiled against another layout.
    """
    out = Rollup(layout)
    segs: dict[tuple[str, str], list[TableProfile]] = {}
    counts: dict[tuple[str, str], int] = {}
    for part in parts:
        if part.layout != layout:
            raise ProfileError(f"Rollups merge only when profiled against the same "
                               f"reference layout; got {layout[:12]} and {part.layout[:12]}.")
        out.width = part.width
        out.seen += part.seen
        out.rows += part.rows
        out.skipped += part.skipped
        out.unscored += part.unscored
        for key, (prof, n) in part.segments.items():
            segs.setdefault(key, []).append(prof)
            counts[key] = counts.get(key, 0) + n
        out.columns |= part.columns
        out.versions |= part.versions
        out.kept_width = part.kept_width or out.kept_width
    out.scores = scores_array(parts)
    import numpy as np

    kept = [p for p in parts if len(p.kept_ids)]
    if kept:
        out.kept_ids = np.concatenate([np.asarray(p.kept_ids, dtype=np.uint64) for p in kept])
        out.kept_proba = np.concatenate([np.asarray(p.kept_proba, dtype=np.float64)
                                         for p in kept])
    out.profile = merge_profiles([p.profile for p in parts if p.profile is not None])
    out.segments = {key: [merge_profiles(profs), counts[key]] for key, profs in segs.items()}
    return out


def rollup_from_bytes(data: bytes, layouts: Mapping[str, ColumnProfile]) -> Rollup:
    """Read :meth:`Rollup.to_bytes` back.

    Args:
        data: The stored form.
        layouts: The reference's columns (by name) whose layout fingerprint the rollup has.

    Raises:
        ProfileError: not a rollup, written by a newer keelwork, malformed, or with a column
            ``layouts`` lacks.
    """
    import numpy as np

    try:
        (size,) = _HEADER.unpack_from(data, 0)
        head = orjson.loads(data[_HEADER.size:_HEADER.size + size])
        check_kind(head, ROLLUP_KIND, ROLLUP_VERSION, "A monitor rollup")
        start = _HEADER.size + size
        kept, width = int(head.get("kept", 0)), int(head.get("kept_width", 0))
        n = int(head.get("n_scores", (len(data) - start) // 8))
        body = np.frombuffer(data, dtype="<f8", count=n, offset=start)
        ids = np.frombuffer(data, dtype="<u8", count=kept, offset=start + 8 * n)
        proba = np.frombuffer(data, dtype="<f8", count=kept * width,
                              offset=start + 8 * (n + kept))
        prof = head["profile"]
        return Rollup(
            layout=str(head["layout"]), seen=int(head["seen"]), rows=int(head["rows"]),
            skipped=int(head["skipped"]), unscored=int(head["unscored"]),
            profile=_unpack(prof, layouts) if prof is not None else None,
            segments={(str(f), str(v)): [_unpack(p, layouts), int(n)]
                      for f, v, n, p in head["segments"]},
            columns=set(head["columns"]), versions={int(v) for v in head["versions"]},
            width=int(head["width"]), scores=body, kept_ids=ids, kept_proba=proba,
            kept_width=width)
    except (KeyError, TypeError, ValueError, struct.error, orjson.JSONDecodeError) as exc:
        raise ProfileError(f"The stored monitor rollup is malformed: {exc!r}.") from exc


def _pack(profile: TableProfile) -> list[Any]:
    """A profile's counts without its layouts (the reference holds those)."""
    cols: dict[str, list[Any]] = {}
    for n, c in profile.columns.items():
        cols[n] = ([c.rows, c.nulls, c.counts, c.non_finite, c.minimum, c.maximum,
                    encode_moment(c.mean), encode_moment(c.m2)] if c.kind == "numeric" else
                   [c.rows, c.nulls, c.counts, c.new, c.other])
    return [profile.rows, cols]


def _unpack(packed: list[Any], layouts: Mapping[str, ColumnProfile]) -> TableProfile:
    rows, packed_cols = packed
    cols: dict[str, ColumnProfile] = {}
    for n, v in packed_cols.items():
        ref = layouts.get(n)
        if ref is None:
            raise ProfileError(f"The rollup holds column {n!r}, which the reference it is "
                               f"read against does not.")
        if ref.kind == "numeric":
            cols[n] = ColumnProfile(n, "numeric", v[0], v[1], tuple(v[2]), edges=ref.edges,
                                    non_finite=v[3], minimum=v[4], maximum=v[5],
                                    mean=decode_moment(v[6], spread=False),
                                    m2=decode_moment(v[7], spread=True))
        else:
            cols[n] = ColumnProfile(n, "categorical", v[0], v[1], tuple(v[2]),
                                    vocabulary=ref.vocabulary, closed=ref.closed,
                                    new=tuple((k, c) for k, c in v[3]), other=v[4],
                                    max_new=ref.max_new)
    return TableProfile(int(rows), cols)


def layout_fingerprint(schema: Mapping[str, Any], profile: TableProfile,
                       segments: Sequence[str], extra: Mapping[str, Any] | None = None) -> str:
    """A digest of everything rows are profiled and flattened against: the output schema,
    each reference column's kind and layout (edges or vocabulary), the segment fields, and
    ``extra`` (e.g. whether scores are kept). Equal fingerprints: rollups that merge exactly
    and mean the same as a run's own profiles."""
    layouts = {n: [c.kind, list(c.edges), list(c.vocabulary), c.closed, c.max_new]
               for n, c in sorted(profile.columns.items())}
    text = orjson.dumps({"schema": dict(schema), "columns": layouts,
                         "segments": list(segments), "extra": dict(extra or {})},
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def scores_array(parts: Sequence[Rollup]) -> Any:
    """The scores of ``parts`` together, as one float array."""
    import numpy as np

    arrays = [np.asarray(p.scores, dtype=np.float64) for p in parts if len(p.scores)]
    return np.concatenate(arrays) if arrays else np.empty(0)


def canonical_scores(scores: Any) -> Any:
    """``scores`` (floats, or probability rows) in one fixed order: sorted, rows compared
    lexicographically. CBPE's estimate of a window then depends on its multiset of scores,
    not on the order the log or a rollup happens to hold them in."""
    if len(scores) == 0:
        return []
    import numpy as np

    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 1:
        return np.sort(arr)
    return arr[np.lexsort(arr.T[::-1])]


def carried(profile: TableProfile, columns: set[str]) -> TableProfile:
    """``profile`` without the columns that none of a window's predictions carried."""
    return TableProfile(profile.rows, {n: c for n, c in profile.columns.items()
                                       if n in columns})


def empty_profile(reference: TableProfile) -> TableProfile:
    """A profile of no rows against ``reference``'s layouts (every column reads ``empty``)."""
    cols = {n: replace(c, rows=0, nulls=0, counts=(0,) * len(c.counts), non_finite=0,
                       minimum=None, maximum=None, mean=0.0, m2=0.0, new=(), other=0)
            for n, c in reference.columns.items()}
    return TableProfile(0, cols)


__all__ = [
    "ROLLUP_KIND",
    "ROLLUP_VERSION",
    "Rollup",
    "canonical_scores",
    "carried",
    "combine",
    "empty_profile",
    "id_key",
    "layout_fingerprint",
    "rollup_from_bytes",
    "scores_array",
]
