"""Per-subject data keys for dataset snapshot rows (crypto-shredding of snapshot fields).

A snapshot taken with a subject column, while the project's key store is attached with its
subject key (:func:`keelwork.adapters.stores.subject_keys.seal_for`), stores each row that
names a subject sealed whole -- every field, the subject column included -- with AES-256-GCM
under that subject's **snapshot key**. Destroying the key makes the row unreadable in every
copy of the part file; no file is rewritten.

Which fields: all of them, as the prediction log seals every payload column of a row with a
subject (``inputs``, ``outputs``, ``request_meta``): the contract's ``pii`` marks say what the
serving path redacts, not which training columns are personal, and a row of a person is personal
as a whole. Rows whose subject is null name no one and are stored in clear.

The snapshot key is the subject's own key in the key store under a scoped id: the key id of
``"\\0snapshot\\0" + str(subject)`` (HMAC-SHA256 under the project's subject key), not the
prediction log's key of the subject, so that retention -- which destroys the log key once all of
a subject's predictions have expired -- never erases training rows. ``keel erase --subject``
destroys both.

A sealed part file has two columns, in the layout's row order (bucket ranges as for clear
parts)::

    __keel_key_id   string  the key id (null: the row names no subject, stored in clear)
    __keel_row      binary  nonce (12 bytes) || AES-GCM(row) ; clear rows: the row itself

The row is the JSON list of its field values in the snapshot's column order, each value
encoded losslessly for its Arrow type: numbers, strings and booleans as themselves (NaN and
infinities as JSON's ``NaN``/``Infinity``), dates, times, timestamps and durations as their
integer physical value, decimals as text, binaries as base64, lists and structs of those as
JSON. The associated data binds each value to its key id and the snapshot's content hash
(``<key id>:snapshot:<sha256>``). The snapshot's Arrow schema is in the manifest
(``sealed.schema``, base64 of its IPC form), so the rows read back in their exact types.

A schema holding a column this codec cannot carry losslessly (a map, or a list or struct of
temporal, decimal or binary values) is not sealed: it is stored in clear and erased by
rewriting its part (:mod:`keelwork.adapters.stores.dataset_erasure`), as snapshots taken before
sealing are.
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from keelwork.adapters.stores.subject_keys import SubjectKeys

KEY_ID_COLUMN = "__keel_key_id"
ROW_COLUMN = "__keel_row"
#: The prefix of the scoped subject id whose key seals snapshot rows.
SNAPSHOT_SCOPE = "\0snapshot\0"
#: The codec above, as the manifest names it.
CODEC = "keelwork-sealed-rows-v1"
#: What a reader does with the rows whose key is gone: drop them, or keep them with every
#: field null (the prediction log's convention for erased payloads).
Erased = Literal["drop", "null"]


def scoped(subject: Any) -> str:
    """The id whose key seals ``subject``'s snapshot rows (its text: ``42`` is ``"42"``)."""
    return SNAPSHOT_SCOPE + str(subject)


def can_seal(schema: Any) -> bool:
    """Whether every column of ``schema`` (canonical types) round-trips through the codec."""
    return all(_flat(f.type) or _json_native(f.type) for f in schema)


def redacted(schema: Any, subject_column: str | None, *, sealed: bool) -> list[str]:
    """The columns whose values a snapshot's stored profile must not show: the subject
    column, and for a sealed snapshot every text column too (top values are verbatim values,
    and the profile sits in the data store, in clear, in every backup of it)."""
    import pyarrow as pa

    out = [] if subject_column is None else [subject_column]
    if sealed:
        out += [f.name for f in schema if f.name != subject_column and (
            pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    return out


def seal_part(table: Any, subject_column: str, sha256: str, keys: SubjectKeys) -> Any:
    """The sealed form of ``table`` (rows of one part, in order): see the module text."""
    import pyarrow as pa

    subjects = table.column(subject_column).to_pylist()
    entries = keys.ensure({scoped(s) for s in subjects if s is not None})
    aad = {k: f"{k}:snapshot:{sha256}".encode() for k, _ in entries.values()}
    ciphers = {k: _aead(key) for k, key in entries.values()}
    columns = [_encode(c) for c in table.columns]
    ids: list[str | None] = []
    blobs: list[bytes] = []
    nonces = os.urandom(12 * len(subjects))
    for i, subject in enumerate(subjects):
        plain = json.dumps([c[i] for c in columns], separators=(",", ":")).encode(
            "utf-8", "surrogatepass")
        if subject is None:
            ids.append(None)
            blobs.append(plain)
            continue
        kid = entries[scoped(subject)][0]
        nonce = nonces[12 * i:12 * i + 12]
        ids.append(kid)
        blobs.append(nonce + ciphers[kid].encrypt(nonce, plain, aad[kid]))
    return pa.table({KEY_ID_COLUMN: pa.array(ids, pa.string()),
                     ROW_COLUMN: pa.array(blobs, pa.binary())})


def open_part(sealed: Any, schema: Any, sha256: str, keys: SubjectKeys | None, *,
              erased: Erased = "drop") -> tuple[Any, int]:
    """The rows of a sealed part in their snapshot types, and how many did not open.

    Args:
        sealed: The part as stored (:data:`KEY_ID_COLUMN`, :data:`ROW_COLUMN`).
        schema: The snapshot's schema (:func:`schema_of`).
        sha256: The snapshot's content hash (bound into every sealed row).
        keys: The key store (None: no key store, every sealed row reads as erased).
        erased: What to do with rows whose key is gone (or that fail authentication).

    Returns:
        ``(table, erased_rows)``.
    """
    import pyarrow as pa
    from cryptography.exceptions import InvalidTag

    ids = sealed.column(KEY_ID_COLUMN).to_pylist()
    blobs = sealed.column(ROW_COLUMN).to_pylist()
    wanted = {k for k in ids if k is not None}
    found = keys.keys(wanted) if keys is not None and wanted else {}
    ciphers = {k: _aead(v) for k, v in found.items()}
    width = len(schema)
    rows: list[list[Any]] = []
    gone = 0
    for kid, blob in zip(ids, blobs, strict=True):
        if kid is None:
            rows.append(json.loads(blob))
            continue
        aead = ciphers.get(kid)
        try:
            if aead is None:
                raise ValueError(kid)
            plain = aead.decrypt(blob[:12], blob[12:], f"{kid}:snapshot:{sha256}".encode())
        except (InvalidTag, ValueError):
            gone += 1
            if erased == "null":
                rows.append([None] * width)
            continue
        rows.append(json.loads(plain))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]
    arrays = [_decode(list(values), field.type) for values, field in zip(columns, schema,
                                                                       strict=True)]
    return pa.table(arrays, schema=schema), gone


def key_ids(sealed: Any) -> list[str | None]:
    """The key id of each row of a sealed part (None: a row without a subject)."""
    return list(sealed.column(KEY_ID_COLUMN).to_pylist())


def schema_text(schema: Any) -> str:
    """``schema`` as the manifest keeps it (base64 of its Arrow IPC form)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_of(text: str) -> Any:
    """The schema :func:`schema_text` wrote."""
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


# --------------------------------------------------------------------------- the codec
def _temporal(t: Any) -> Any:
    """The physical integer type of a temporal type, None for others."""
    import pyarrow as pa

    if pa.types.is_date32(t):
        return pa.int32()
    if pa.types.is_date64(t) or pa.types.is_timestamp(t) or pa.types.is_time(t) \
            or pa.types.is_duration(t):
        return pa.int64()
    return None


def _flat(t: Any) -> bool:
    import pyarrow as pa

    return bool(_temporal(t) is not None or pa.types.is_decimal(t) or _binary(t)
                or _scalar(t))


def _binary(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t)
                or pa.types.is_fixed_size_binary(t))


def _scalar(t: Any) -> bool:
    import pyarrow as pa

    ty = pa.types
    return bool(ty.is_null(t) or ty.is_boolean(t) or ty.is_integer(t) or ty.is_floating(t)
                or ty.is_string(t) or ty.is_large_string(t))


def _json_native(t: Any) -> bool:
    """Lists and structs whose leaves are numbers, strings, booleans or nulls."""
    import pyarrow as pa

    ty = pa.types
    if ty.is_list(t) or ty.is_large_list(t) or ty.is_fixed_size_list(t):
        return _scalar(t.value_type) or _json_native(t.value_type)
    if ty.is_struct(t):
        return all(_scalar(f.type) or _json_native(f.type) for f in t)
    return False


def _encode(column: Any) -> list[Any]:
    import pyarrow as pa

    t = column.type
    if (phys := _temporal(t)) is not None:
        return list(column.cast(phys).to_pylist())
    if pa.types.is_decimal(t):
        return [None if v is None else str(v) for v in column.to_pylist()]
    if _binary(t):
        return [None if v is None else base64.b64encode(v).decode("ascii")
                for v in column.to_pylist()]
    return list(column.to_pylist())


def _decode(values: list[Any], t: Any) -> Any:
    import pyarrow as pa

    if (phys := _temporal(t)) is not None:
        return pa.array(values, phys).cast(t)
    if pa.types.is_decimal(t):
        return pa.array([None if v is None else Decimal(v) for v in values], t)
    if _binary(t):
        return pa.array([None if v is None else base64.b64decode(v) for v in values], t)
    return pa.array(values, t)


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


__all__ = ["CODEC", "KEY_ID_COLUMN", "ROW_COLUMN", "SNAPSHOT_SCOPE", "Erased", "can_seal",
           "key_ids", "open_part", "redacted", "schema_of", "schema_text", "scoped", "seal_part"]
