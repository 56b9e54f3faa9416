"""Atomic file writes: every output goes to ``NAME.partial`` and is renamed to ``NAME`` at the end.

A failure (an error, Ctrl-C) removes the partial file and leaves whatever ``NAME`` held before,
so no command ever leaves a half-written file under the final name. Several files written
together (``keel validate --output --quarantine``) are renamed only once all of them succeeded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: What a file being written is called until it is complete.
PARTIAL_SUFFIX = ".partial"


def partial_path(final: Path) -> Path:
    """The name ``final`` is written under until it is complete."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


def remove_quietly(path: Path) -> None:
    """Remove ``path`` if it is there; a failure to remove it is not the error worth reporting."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@contextmanager
def atomic_paths(*finals: Path) -> Iterator[list[Path]]:
    """The partial paths to write ``finals`` under; renamed into place when the block succeeds.

    Args:
        finals: The final paths.

    Yields:
        One partial path per final path, in order.

    Raises:
        OSError: a rename failed (the partial files are removed).
    """
    partials = [partial_path(f) for f in finals]
    try:
        yield partials
        for partial, final in zip(partials, finals, strict=True):
            partial.replace(final)
    except BaseException:
        for partial in partials:
            remove_quietly(partial)
        raise


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """One file: see :func:`atomic_paths`."""
    with atomic_paths(final) as (partial,):
        yield partial


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via its partial name.

    Raises:
        OSError: the file cannot be written (nothing is left behind).
    """
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")


__all__ = ["PARTIAL_SUFFIX", "atomic_path", "atomic_paths", "partial_path", "remove_quietly",
           "write_text_atomic"]
