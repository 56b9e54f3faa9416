"""Entity keys, event times and feature values, read the same way on every path.

* Keys compare as text: ``42``, ``42.0`` and ``"42"`` are one key (CSV and JSON disagree on
  types; a join that silently matched nothing would be worse). Keys must be strings or
  integers (integral floats count as integers); anything else is no key (``None``).
* Times become integer microseconds since the Unix epoch, UTC. A column may hold timestamps
  (naive ones are UTC), dates, ISO 8601 strings (naive ones are UTC) or numbers (Unix seconds).
* Feature values must survive a JSON round trip through the online store unchanged, so a
  served value equals the trained one: numbers, booleans, strings, and lists or structs of
  those. Timestamps, decimals and binary are refused with the column named.

Everything here is pure; pyarrow and numpy are imported when called.
"""

from __future__ import annotations

import json
import numbers
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from keelwork.errors import DataFileError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
_MAX_SECONDS = 2**63 // 1_000_000 - 1


# --------------------------------------------------------------------------- keys
def canonical_key(value: Any) -> str | None:
    """The text form of one entity key, or None when ``value`` cannot be a key.

    Args:
        value: A key from a request or a row.

    Returns:
        ``str`` for strings and integers (``42`` -> ``"42"``, ``42.0`` -> ``"42"``); None for
        None, booleans, non-integral numbers and other types.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float | numbers.Real):
        f = float(value)
        return str(int(f)) if f.is_integer() else None
    return None


def key_column(column: Any, *, name: str, source: str) -> Any:
    """A key column as a ``pyarrow.StringArray`` of canonical keys (null: no key).

    Args:
        column: A ``pyarrow`` Array or ChunkedArray.
        name: The column's name (for messages).
        source: The table's file or name (for messages).

    Returns:
        The canonical keys.

    Raises:
        DataFileError: the column holds neither strings nor integers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from keelwork.core.contracts.columns import is_mixed

    arr = _combined(column)
    t = arr.type
    if pa.types.is_dictionary(t):
        return key_column(arr.dictionary_decode(), name=name, source=source)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if is_mixed(t):  # numbers and strings in one column: each value by the scalar rule
        values = column_values(arr)
        keys = [canonical_key(v) for v in values]
        bad = next((i for i, (v, k) in enumerate(zip(values, keys, strict=True))
                    if k is None and v is not None), None)
        if bad is not None:
            raise DataFileError(f"{source}: the key column {name!r} must hold strings or "
                                f"integers; got {values[bad]!r} at row {bad}.", path=source,
                                column=name)
        return pa.array(keys, pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.cast(pa.string())
    if pa.types.is_integer(t):
        return arr.cast(pa.string())
    if pa.types.is_floating(t):
        finite = pc.is_finite(arr)
        bad = pc.and_(finite, pc.not_equal(pc.floor(arr), arr))
        bad = pc.or_kleene(bad, pc.and_(pc.is_valid(arr), pc.invert(finite)))
        if pc.any(bad).as_py():
            row = int(pc.index(bad, True).as_py())
            raise DataFileError(
                f"{source}: the key column {name!r} must hold strings or integers; got "
                f"{arr[row].as_py()!r} at row {row}.", path=source, column=name)
        try:
            return arr.cast(pa.int64()).cast(pa.string())
        except pa.ArrowInvalid as exc:
            raise DataFileError(f"{source}: the key column {name!r} holds numbers beyond "
                                f"int64: {exc}.", path=source, column=name) from None
    raise DataFileError(f"{source}: the key column {name!r} must hold strings or integers; got "
                        f"type {t}.", path=source, column=name)


# --------------------------------------------------------------------------- times
def micros_of(value: datetime | str | float) -> int:
    """One time as integer microseconds since the epoch (UTC).

    Args:
        value: A datetime (naive = UTC), an ISO 8601 string (naive = UTC) or Unix seconds.

    Returns:
        Microseconds since 1970-01-01T00:00:00Z.

    Raises:
        ValueError: ``value`` is a string that is not ISO 8601, or not a time at all.
    """
    if isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (when - _EPOCH) // _US
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"must be an ISO 8601 date or time (2024-05-01, "
                             f"2024-05-01T12:30:00+02:00); got {value!r}") from None
        return micros_of(parsed)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"must be a time (datetime, ISO string or Unix seconds); got "
                         f"{value!r}")
    return round(float(value) * 1_000_000) if not isinstance(value, int) else value * 1_000_000


def time_column(column: Any, *, name: str,
                source: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """A time column as microseconds since the epoch (UTC) plus a validity mask.

    Args:
        column: A ``pyarrow`` Array or ChunkedArray of timestamps, dates, ISO 8601 strings or
            numbers (Unix seconds).
        name: The column's name (for messages).
        source: The table's file or name (for messages).

    Returns:
        ``(micros, valid)``: int64 values (0 where invalid) and True where the time is known.

    Raises:
        DataFileError: the column's type is not a time, or a string is not ISO 8601.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from keelwork.core.contracts.columns import is_mixed

    arr = _combined(column)
    t = arr.type
    if pa.types.is_dictionary(t):
        return time_column(arr.dictionary_decode(), name=name, source=source)
    if is_mixed(t):  # ISO strings and Unix seconds in one column: value by value
        return _parse_values(column_values(arr), name=name, source=source)
    valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=np.bool_)
    if pa.types.is_null(t):
        return np.zeros(len(arr), np.int64), valid
    if pa.types.is_timestamp(t) or pa.types.is_date64(t):
        raw = _ints(arr.cast(pa.int64()))
        scale = _UNIT_US.get(t.unit, 1) if pa.types.is_timestamp(t) else 1_000
        if scale is None:  # nanoseconds: floor to the microsecond
            return np.floor_divide(raw, 1_000), valid
        return raw * scale, valid
    if pa.types.is_date32(t):
        return _ints(arr.cast(pa.int32()).cast(pa.int64())) * 86_400_000_000, valid
    if pa.types.is_integer(t):
        raw = _ints(arr.cast(pa.int64()))
        if np.any(np.abs(raw[valid]) > _MAX_SECONDS):
            raise DataFileError(f"{source}: the time column {name!r} holds Unix seconds out of "
                                "range.", path=source, column=name)
        return raw * 1_000_000, valid
    if pa.types.is_floating(t):
        f = np.asarray(arr.cast(pa.float64()).fill_null(0.0).to_numpy(), dtype=np.float64)
        valid &= ~np.isnan(f)
        if np.any(~np.isfinite(f[valid])) or np.any(np.abs(f[valid]) > _MAX_SECONDS):
            raise DataFileError(f"{source}: the time column {name!r} holds Unix seconds out of "
                                "range (or infinite).", path=source, column=name)
        return np.where(valid, np.round(f * 1e6), 0).astype(np.int64), valid
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _parse_strings(arr, name=name, source=source), valid
    raise DataFileError(f"{source}: the time column {name!r} must hold timestamps, dates, ISO "
                        f"8601 strings or Unix seconds; got type {t}.", path=source, column=name)


def _parse_strings(arr: Any, *, name: str, source: str) -> npt.NDArray[np.int64]:
    import pyarrow as pa

    # Arrow parses ISO 8601 fast but wants all-naive or all-offset values; mixed columns and
    # forms it does not know (e.g. '2024-05-01T12:30+02') go through Python, row by row.
    for target in (pa.timestamp("us"), pa.timestamp("us", tz="UTC")):
        try:
            return _ints(arr.cast(target).cast(pa.int64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return _parse_values(arr.to_pylist(), name=name, source=source)[0]


def _parse_values(values: list[Any], *, name: str,
                  source: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    import numpy as np

    out = np.zeros(len(values), np.int64)
    valid = np.zeros(len(values), np.bool_)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            continue
        try:
            out[i] = micros_of(value)
        except (ValueError, OverflowError):
            raise DataFileError(
                f"{source}: the time column {name!r} must hold ISO 8601 times "
                f"(2024-05-01T12:30:00+02:00) or Unix seconds; got {value!r} at row {i}.",
                path=source, column=name) from None
        valid[i] = True
    return out, valid


def _ints(arr: Any) -> npt.NDArray[np.int64]:
    import numpy as np

    return np.asarray(arr.fill_null(0).to_numpy(), dtype=np.int64)


def _combined(column: Any) -> Any:
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


# --------------------------------------------------------------------------- values
def column_values(column: Any) -> list[Any]:
    """A column's values as the plain Python values a JSON request would carry.

    A *mixed* column (values of different JSON types, as the data readers produce from JSON
    lines; :mod:`keelwork.core.contracts.columns`) keeps each value's type, and its arrays and
    objects become lists and dicts again.

    Args:
        column: A ``pyarrow`` Array or ChunkedArray.

    Returns:
        One Python value per row.
    """
    from keelwork.core.contracts.columns import MIXED_CHILDREN, is_mixed

    arr = _combined(column)
    if not is_mixed(arr.type):
        return list(arr.to_pylist())
    as_json = MIXED_CHILDREN.index("json")
    return [json.loads(v) if s.type_code == as_json and v is not None else v
            for s in arr for v in (s.as_py(),)]


def check_feature_type(type_: Any, *, name: str, source: str) -> None:
    """Refuse a feature column type whose values would not survive the online store unchanged.

    Args:
        type_: The ``pyarrow.DataType`` of the column.
        name: The column's name (for messages).
        source: The table's file or name (for messages).

    Raises:
        DataFileError: the type is not a number, boolean, string, or list/struct of those.
    """
    from keelwork.core.contracts.columns import is_mixed

    if is_mixed(type_):
        raise DataFileError(
            f"{source}: the feature column {name!r} holds values of different types (e.g. "
            "numbers and strings); a served feature needs one type. Clean it in the source.",
            path=source, column=name)
    if not json_like(type_):
        raise DataFileError(
            f"{source}: the feature column {name!r} must hold numbers, booleans, strings or "
            f"lists of them (values are served from JSON); got type {type_}. Convert it in the "
            "source, e.g. a timestamp to Unix seconds.", path=source, column=name)


def json_like(t: Any) -> bool:
    """Whether values of the ``pyarrow`` type ``t`` read back from JSON as the same values.

    Args:
        t: A ``pyarrow.DataType``.

    Returns:
        True for numbers (not float16), booleans, strings, nulls, lists or structs of them, and
        mixed columns (read with :func:`column_values`).
    """
    import pyarrow as pa

    from keelwork.core.contracts.columns import is_mixed

    types = pa.types
    if types.is_dictionary(t):
        return json_like(t.value_type)
    if is_mixed(t):
        return True
    if (types.is_null(t) or types.is_boolean(t) or types.is_integer(t)
            or types.is_float32(t) or types.is_float64(t)
            or types.is_string(t) or types.is_large_string(t)):
        return True
    if types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t):
        return json_like(t.value_type)
    if types.is_struct(t):
        return all(json_like(t.field(i).type) for i in range(t.num_fields))
    return False


__all__ = ["canonical_key", "check_feature_type", "column_values", "json_like", "key_column",
           "micros_of", "time_column"]
