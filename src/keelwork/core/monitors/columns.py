"""Flattened log rows as typed columns: numeric or categorical, and free text told apart.

What a monitoring reference and every window profile (:func:`~keelwork.core.monitors.profile.
profile_table`) read: rows flattened as :mod:`keelwork.core.monitors.windows` documents, typed
once from the reference and then read the same way in every window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from keelwork.core.monitors.profile import (
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_MAX_NEW,
    TableProfile,
    categorical_profile,
    label_of,
    numeric_profile,
)
from keelwork.core.monitors.windows import category


def column_kinds(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``numeric`` for columns whose values are all numbers (not booleans), else categorical."""
    kinds: dict[str, str] = {}
    for row in rows:
        for k, v in row.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                kinds.setdefault(k, "")
                continue
            numeric = isinstance(v, int | float) and not isinstance(v, bool)
            if not numeric:
                kinds[k] = "categorical"
            elif kinds.get(k, "") == "":
                kinds[k] = "numeric"
    # A column with no value anywhere is profiled numeric: it has no vocabulary to keep.
    return {k: (v or "numeric") for k, v in kinds.items()}


def columns_table(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str],
                  names: Sequence[str] | None = None) -> Any:
    """A pyarrow table of ``rows`` with one typed column per name (absent values are null).

    A value that does not fit its column's kind (text in a numeric column) becomes null
    rather than failing the whole window; the column's null share then shows it.
    """
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for name in names if names is not None else kinds:
        kind = kinds.get(name)
        if kind is None:
            continue
        values = [r.get(name) for r in rows]
        if kind == "numeric":
            cols[name] = pa.array([_float(v) for v in values], pa.float64())
        else:
            cols[name] = pa.array([None if v is None else category(v) for v in values],
                                  pa.string())
    if not cols:  # keep the row count: a profile of no known column still counts rows
        cols["__rows__"] = pa.array([0] * len(rows), pa.int8())
    return pa.table(cols)


def profile_rows(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str],
                 reference: TableProfile, names: Sequence[str] | None = None) -> TableProfile:
    """The profile of ``rows`` against ``reference``: equal to profiling
    :func:`columns_table` of the same rows with ``profile_table(..., reference=reference)``,
    counted with numpy alone. For a few thousand rows (a window's labelled predictions) in a
    short-lived process: no pyarrow array is built, so the process does not pay for importing
    pyarrow and, with its first array, pandas. A value that does not fit its column's kind
    is a null, as in :func:`columns_table`.
    """
    import numpy as np

    wanted = set(names if names is not None else kinds)
    out = {}
    for name, ref in reference.columns.items():
        if name not in wanted or kinds.get(name) is None:
            continue
        values = [r.get(name) for r in rows]
        if ref.kind == "numeric":
            floats = np.array([np.nan if (f := _float(v)) is None else f for v in values],
                              dtype=np.float64)
            out[name] = numeric_profile(name, floats, ref, len(ref.edges))
            continue
        found: dict[str, int] = {}
        nulls = 0
        for v in values:
            if v is None:
                nulls += 1
            else:
                label = label_of(category(v))
                found[label] = found.get(label, 0) + 1
        out[name] = categorical_profile(name, found, len(rows), nulls, ref,
                                        DEFAULT_MAX_CATEGORIES, DEFAULT_MAX_NEW)
    return TableProfile(len(rows), out)


def _float(v: Any) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    try:
        return float(v)
    except ValueError:
        return None


def detect_text_columns(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """String columns that look like prose: >= 50 % distinct values averaging >= 20 chars."""
    out = []
    for name in names:
        texts = [r.get(name) for r in rows]
        strings = [t for t in texts if isinstance(t, str)]
        if not strings or len(strings) < 0.5 * len(texts):
            continue
        if (len(set(strings)) >= 0.5 * len(strings)
                and sum(map(len, strings)) / len(strings) >= 20):
            out.append(name)
    return out


__all__ = ["column_kinds", "columns_table", "detect_text_columns", "profile_rows"]
