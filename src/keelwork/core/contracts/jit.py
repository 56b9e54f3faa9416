"""When the batch engine loads its compiled kernels (numba, the ``fast`` extra).

The kernels (:mod:`keelwork.core.contracts.jit_kernels`) check a text value against categories
in ~4 ns instead of Arrow's ~12 and a float range in one pass instead of two. Loading them costs
~0.6 s once per process (numba's import and its on-disk compile cache), which a one-off check
never earns back. So, in mode ``auto`` (the default), a :class:`Jit` loads them only after it
has checked :data:`LOAD_AFTER` text values with Arrow: a pipeline or a watcher that keeps
validating switches over, a single ``keel validate`` of a small file does not. ``on`` loads them
at the first big array, ``off`` never. Without numba installed nothing changes.

The mode is a setting (``KEELWORK_JIT``, :class:`keelwork.spec.settings.Settings`): whoever
starts the work makes a ``Jit(settings.jit)`` and runs the checks inside ``with jit.active():``.
Outside any active :class:`Jit` the checks use Arrow only. The state (values counted, kernels
loaded) lives in the :class:`Jit`, not in this module; the active one is a context variable, so
threads and tasks that did not enter it are not affected.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from keelwork.spec.settings import JitMode

#: Mode ``auto``: text values checked with Arrow before the kernels are loaded (at ~8 ns saved
#: per value, loading pays for itself after ~75M more).
LOAD_AFTER: Final = 16_000_000

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


class Jit:
    """One run's decision whether the compiled kernels are worth loading (see the module).

    Args:
        mode: ``auto``, ``on`` or ``off``.
        load_after: Mode ``auto``: text values checked with Arrow before switching.
    """

    def __init__(self, mode: JitMode = "auto", *, load_after: int = LOAD_AFTER) -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"The JIT mode must be auto, on or off; got {mode!r}.")
        self.mode: JitMode = mode
        self.load_after = load_after
        self.checked = 0  # text values checked with Arrow so far (mode auto)
        self._loaded = False

    def loaded(self) -> Any:
        """The kernel module if this Jit has loaded it, else None (never loads)."""
        return _kernels() if self._loaded else None

    def for_text(self, values: int) -> Any:
        """The kernel module for checking ``values`` text values, or None: use Arrow.

        Args:
            values: How many values the caller is about to check.

        Returns:
            :mod:`keelwork.core.contracts.jit_kernels`, or None.
        """
        if self._loaded:
            return _kernels()
        if self.mode == "off":
            return None
        if self.mode != "on":
            self.checked += values  # a race only shifts when the switch happens
            if self.checked <= self.load_after:
                return None
        kernels = _kernels()
        self._loaded = kernels is not None
        return kernels

    @contextmanager
    def active(self) -> Iterator[Jit]:
        """Make this the Jit the contract checks of this context consult."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


_ACTIVE: ContextVar[Jit | None] = ContextVar("keelwork_jit", default=None)


def loaded() -> Any:
    """The kernel module if the active :class:`Jit` has loaded it, else None (never loads)."""
    jit = _ACTIVE.get()
    return None if jit is None else jit.loaded()


def for_text(values: int) -> Any:
    """The active :class:`Jit`'s answer to :meth:`Jit.for_text`; None (Arrow) when none is."""
    jit = _ACTIVE.get()
    return None if jit is None else jit.for_text(values)


__all__ = ["LOAD_AFTER", "Jit", "available", "for_text", "loaded"]
