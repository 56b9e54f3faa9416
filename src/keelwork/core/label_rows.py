"""Label rows: the rules that turn one labels record (a file row, a feedback object) into a label.

Pure and free of I/O; the label store (:mod:`keelwork.adapters.stores.label_writes`) applies
the rows it gets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keelwork.core.ingest_values import (
    canonical_json,
    id_text,
    json_safe,
    parse_timestamp,
)
from keelwork.errors import ErrorDetail, InvalidId

#: How far past the current time a label's ``ts`` may lie (clock skew between systems).
LABEL_TS_FUTURE_S = 86_400.0


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One valid label: the ground truth for one prediction.

    Attributes:
        prediction_id: The prediction it is the truth for.
        label: The label, JSON-safe.
        label_json: :func:`canonical_json` of ``label`` (what is stored and compared).
        ts: When the truth was observed (unix seconds), if the file says.
    """

    prediction_id: str
    label: Any
    label_json: str
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class LabelColumns:
    """Which columns of a labels file hold what.

    Attributes:
        id: The prediction id.
        label: The label.
        ts: When the truth was observed (optional column).
    """

    id: str = "prediction_id"
    label: str = "label"
    ts: str | None = None

    def required(self) -> tuple[str, ...]:
        """The columns a labels file must have."""
        return (self.id, self.label)


_ABSENT = object()


def parse_label(record: Mapping[str, Any], columns: LabelColumns = LabelColumns(), *,
                noun: str = "column", now: float | None = None,
                ) -> tuple[LabelRow | None, list[ErrorDetail]]:
    """Check one labels-file record and turn it into a :class:`LabelRow`.

    Rules (stable names): ``required`` (the id or label is absent, null or, for the label, an
    empty or blank string), ``type`` (an id that
    is not a string or integer, a timestamp that is neither a number nor an ISO date),
    ``min_length`` (an empty id), ``max_length`` (an id longer than
    :data:`~keelwork.core.ingest_values.MAX_ID_LENGTH`),
    ``finite`` (NaN or an infinity as the label or timestamp), ``range`` (a timestamp before
    1970 or more than :data:`LABEL_TS_FUTURE_S` seconds past ``now``).

    Args:
        record: The record, keyed by column name.
        columns: The column names.
        noun: What the messages call a column: ``column`` (files) or ``field`` (JSON bodies).
        now: The current time, unix seconds (default: the clock).

    Returns:
        ``(row, [])`` for a valid record, ``(None, problems)`` otherwise.
    """
    problems: list[ErrorDetail] = []
    raw_id = record.get(columns.id, _ABSENT)
    pid: str | None = None
    if raw_id is _ABSENT or raw_id is None:
        problems.append(ErrorDetail(columns.id, "required", None,
                                    f"The '{columns.id}' {noun} must hold a prediction id; got "
                                    "nothing."))
    else:
        try:
            pid = id_text(raw_id)
        except InvalidId as exc:
            problems.append(ErrorDetail(columns.id, exc.rule, json_safe(raw_id),
                                        f"The '{columns.id}' {noun} {exc}."))
    raw_label = record.get(columns.label, _ABSENT)
    label: Any = None
    label_json = ""
    if raw_label is _ABSENT or raw_label is None or (isinstance(raw_label, str)
                                                    and not raw_label.strip()):
        # An empty CSV cell is read as "" in a text column: it is a missing label, not one.
        got = None if raw_label is _ABSENT else raw_label
        problems.append(ErrorDetail(columns.label, "required", got,
                                    f"The '{columns.label}' {noun} must hold a label; got "
                                    f"{'nothing' if got is None else repr(got)}."))
    else:
        label = json_safe(raw_label)
        try:
            label_json = canonical_json(_finite_or_raise(raw_label))
        except ValueError:
            problems.append(ErrorDetail(columns.label, "finite", label,
                                        f"The '{columns.label}' {noun} must be finite; got "
                                        f"{label!r}."))
    ts: float | None = None
    if columns.ts is not None:
        raw_ts = record.get(columns.ts)
        if raw_ts is not None:
            try:
                ts = parse_timestamp(raw_ts)
                _check_label_ts(ts, now)
            except ValueError as exc:
                rule = ("finite" if "finite" in str(exc)
                        else "range" if "between" in str(exc) else "type")
                problems.append(ErrorDetail(columns.ts, rule, json_safe(raw_ts),
                                            f"The '{columns.ts}' {noun} {exc}."))
    if problems or pid is None:
        return None, problems
    return LabelRow(prediction_id=pid, label=label, label_json=label_json, ts=ts), []


def label_index(path: str) -> int:
    """The record index of a label problem's path: ``labels[12].label`` -> 12 (-1: none).

    Problems are reported in body order, so they are sorted by it.
    """
    head = path.removeprefix("labels[").partition("]")[0]
    return int(head) if head.isdigit() else -1



def _finite_or_raise(value: Any) -> Any:
    """``json_safe`` that refuses NaN and infinities instead of spelling them out."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not finite")
    if isinstance(value, Mapping):
        return {str(k): _finite_or_raise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_raise(v) for v in value]
    return json_safe(value)


def _check_label_ts(ts: float, now: float | None) -> None:
    latest = (datetime.now().timestamp() if now is None else now) + LABEL_TS_FUTURE_S
    if not 0.0 <= ts <= latest:
        shown = f"{ts:.6g}"
        raise ValueError(f"must be between 1970-01-01 and one day from now (unix seconds 0 to "
                         f"{latest:.0f}); got {shown}")



__all__ = [
    "LABEL_TS_FUTURE_S",
    "LabelColumns",
    "LabelRow",
    "label_index",
    "parse_label",
]
