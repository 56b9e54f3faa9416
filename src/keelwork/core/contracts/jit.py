"""When the batch engine loads its compiled kernels (numba, the ``fast`` extra).

The kernels (:mod:`keelwork.core.contracts.jit_kernels`) check a text value against categories
in ~4 ns instead of Arrow's ~12 and a float range in one pass instead of two. Loading them costs
~0.6 s once per process (numba's import and its on-disk compile cache), which a one-off check
never earns back. So, with ``KEEL_JIT=auto`` (the default), a process loads them only after it
has checked :data:`LOAD_AFTER` text values with Arrow: a pipeline or a watcher that keeps
validating switches over, a single ``keel validate`` of a small file does not.
``KEEL_JIT=on`` loads them at the first big array, ``KEEL_JIT=off`` never. Without numba
installed nothing changes.

Pure: no I/O (reads one environment variable).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Final

#: ``KEEL_JIT=auto``: text values checked with Arrow before the kernels are loaded (at ~8 ns
#: saved per value, loading pays for itself after ~75M more).
LOAD_AFTER: Final = 16_000_000


class _State:
    checked = 0  # text values checked with Arrow so far (KEEL_JIT=auto)
    loaded = False


def available() -> bool:
    """Load the kernels now if numba is installed (tests, warm-up).

    Returns:
        Whether the kernels are usable.
    """
    return _kernels() is not None


@lru_cache(maxsize=1)
def _kernels() -> Any:
    try:
        from keelwork.core.contracts import jit_kernels
    except Exception:  # numba is optional; or it cannot set up (no writable cache directory)
        return None
    return jit_kernels


def loaded() -> Any:
    """The kernel module if this process has loaded it, else None (never loads)."""
    return _kernels() if _State.loaded else None


def for_text(values: int) -> Any:
    """The kernel module for checking ``values`` text values, or None (see the docstring).

    Args:
        values: How many values the caller is about to check.

    Returns:
        :mod:`keelwork.core.contracts.jit_kernels`, or None: use Arrow.
    """
    if _State.loaded:
        return _kernels()
    mode = os.environ.get("KEEL_JIT", "auto").strip().lower()
    if mode == "off":
        return None
    if mode != "on":
        _State.checked += values  # a race only shifts when the switch happens
        if _State.checked <= LOAD_AFTER:
            return None
    kernels = _kernels()
    _State.loaded = kernels is not None
    return kernels


__all__ = ["LOAD_AFTER", "available", "for_text", "loaded"]
