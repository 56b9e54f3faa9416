"""The text of a PDF as laid out on its pages: ``pdftotext -layout`` (Debian package
``poppler-utils``), run as a subprocess with a time limit.

Layout mode keeps each line's columns apart by runs of spaces, which the extraction rules
(:mod:`keelwork.core.extraction.invoices`) read as label-value pairs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from keelwork.errors import DataFileError

#: Seconds one document may take.
TIMEOUT_S = 60.0
INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install poppler-utils)"


def pdftotext_path() -> str | None:
    """Where ``pdftotext`` is installed, or None."""
    return shutil.which("pdftotext")


def pdf_text(path: str | Path) -> str:
    """The layout text of the PDF at ``path`` (pages separated by form feeds).

    Raises:
        DataFileError: pdftotext is not installed, the file is missing, or pdftotext failed
            on it (its message included).
    """
    exe = pdftotext_path()
    if exe is None:
        raise DataFileError(f"Reading {path} needs pdftotext, which is not installed: "
                            f"{INSTALL_HINT}.", path=str(path))
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"The PDF {p} does not exist.", path=str(p))
    try:
        done = subprocess.run([exe, "-layout", "-enc", "UTF-8", str(p), "-"],
                              capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DataFileError(f"pdftotext took more than {TIMEOUT_S:.0f} s on {p}.",
                            path=str(p)) from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise DataFileError(f"pdftotext could not read {p} (exit {done.returncode}): {why}",
                            path=str(p))
    return done.stdout.decode("utf-8", "replace")


__all__ = ["INSTALL_HINT", "TIMEOUT_S", "pdf_text", "pdftotext_path"]
