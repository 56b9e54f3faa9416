"""Which values of a string array are outside a small set of allowed strings (categories).

The category check of a text column hashes every value: Arrow's ``is_in`` takes ~12 ns per
value, the compiled kernel (:func:`keelwork.core.contracts.jit_kernels.outside_set`, a perfect
hash of the allowed values) ~4 ns. :mod:`keelwork.core.contracts.jit` decides when a process
loads it. :func:`outside` returns None whenever the kernel does not apply (not loaded, a small
array, a set too big for a small table, values a perfect hash cannot tell apart) and the
caller uses ``is_in``; both give the same answer (tested).

Pure: no I/O; numpy, pyarrow and numba are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from keelwork.core.contracts import jit

#: Arrays shorter than this use ``is_in``.
MIN_ROWS: Final = 1 << 15
_MAX_MEMBERS: Final = 4096
_TRIES: Final = 64
_MASK: Final = (1 << 64) - 1


@dataclass(frozen=True)
class _Table:
    firsts: Any
    lasts: Any
    lengths: Any
    starts: Any
    members: Any
    mult: Any
    shift: Any
    masks: Any
    short: bool  # every member is at most 8 bytes


@lru_cache(maxsize=256)
def _table(values: tuple[bytes, ...]) -> _Table | None:
    """A perfect hash of ``values`` (distinct), or None when none is found."""
    import numpy as np

    from keelwork.core.contracts.jit_kernels import key_of

    keys = [key_of(v) for v in values]
    if len(set(keys)) != len(keys):  # two values share first/last words and length
        return None
    rng = np.random.default_rng(0)
    low = max(1, math.ceil(math.log2(len(values))))
    for bits in range(low + 1, low + 5):
        for _ in range(_TRIES):
            mult = int(rng.integers(0, 2**63, dtype=np.uint64)) * 2 + 1
            slots = [((k * mult) & _MASK) >> (64 - bits) for k in keys]
            if len(set(slots)) == len(slots):
                return _build(values, slots, bits, mult)
    return None


def _build(values: tuple[bytes, ...], slots: list[int], bits: int, mult: int) -> _Table:
    import numpy as np

    size = 1 << bits
    firsts = np.zeros(size, dtype=np.uint64)
    lasts = np.zeros(size, dtype=np.uint64)
    lengths = np.full(size, -1, dtype=np.int64)
    starts = np.zeros(size, dtype=np.int64)
    start = 0
    for value, slot in zip(values, slots, strict=True):
        firsts[slot] = int.from_bytes(value[:8].ljust(8, b"\0"), "little")
        lasts[slot] = int.from_bytes(value[-8:], "little") if len(value) > 8 else 0
        lengths[slot] = len(value)
        starts[slot] = start
        start += len(value)
    members = np.frombuffer(b"".join(values) + b"\0", dtype=np.uint8)
    masks = np.asarray([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
    return _Table(firsts, lasts, lengths, starts, members, np.uint64(mult),
                  np.uint64(64 - bits), masks, all(len(v) <= 8 for v in values))


def outside(arr: Any, allowed: Sequence[str]) -> tuple[Any, int] | None:
    """Rows of a string array whose value is not in ``allowed``, with the compiled kernel.

    Args:
        arr: A ``pyarrow`` string or large_string array (null slots are judged too, as
            whatever bytes they span: mask them afterwards).
        allowed: The allowed values.

    Returns:
        ``(mask, count)``: a numpy bool array, True outside the set, and how many; or None when
        the kernel does not apply (not loaded, a small array, a set it cannot hash perfectly).
    """
    import numpy as np
    import pyarrow as pa

    n = len(arr)
    if n < MIN_ROWS or not allowed or len(allowed) > _MAX_MEMBERS:
        return None
    typ = arr.type
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return None
    kernels = jit.for_text(n)
    if kernels is None:
        return None
    table = _table(tuple(dict.fromkeys(v.encode("utf-8") for v in allowed)))
    if table is None:
        return None
    _, offset_buf, data_buf = arr.buffers()
    dtype = np.int64 if pa.types.is_large_string(typ) else np.int32
    offsets = np.frombuffer(offset_buf, dtype=dtype, count=arr.offset + n + 1)[arr.offset:]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and data_buf.size
            else np.zeros(8, dtype=np.uint8))
    if data.ctypes.data % 8:  # the word view needs 8-byte alignment (Arrow's own buffers are)
        data = data.copy()
    words = data[:len(data) // 8 * 8].view(np.uint64)
    out = np.zeros(n, dtype=bool)
    if table.short:  # members of at most 8 bytes: the key has no last word
        bad = kernels.outside_short_set(offsets, data, words, table.firsts, table.lengths,
                                        table.mult, table.shift, table.masks, out)
        return out, int(bad)
    bad = kernels.outside_set(offsets, data, words, table.firsts, table.lasts, table.lengths,
                          table.starts, table.members, table.mult, table.shift, table.masks,
                          out)
    return out, int(bad)


__all__ = ["MIN_ROWS", "outside"]
