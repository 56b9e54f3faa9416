"""pdftotext as a subprocess: the layout text of a real PDF, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keelwork.adapters.data import pdf_text as pdf
from keelwork.errors import DataFileError

INVOICES = Path(__file__).resolve().parents[3] / "fixtures" / "invoices"


def _need_pdftotext() -> None:
    if pdf.pdftotext_path() is None:
        why = "pdftotext is not installed (Debian: apt-get install poppler-utils)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)


def test_layout_text_keeps_columns_apart() -> None:
    _need_pdftotext()
    text = pdf.pdf_text(INVOICES / "SammyMaystoneLinesTest.pdf")
    line = next(x for x in text.splitlines() if "Balance Due:" in x)
    assert "$127.50" in line and "  " in line.split("Balance Due:")[1]


def test_a_missing_file_or_a_broken_pdf_is_named(tmp_path: Path) -> None:
    _need_pdftotext()
    with pytest.raises(DataFileError, match="does not exist"):
        pdf.pdf_text(tmp_path / "none.pdf")
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf")
    with pytest.raises(DataFileError, match="could not read") as caught:
        pdf.pdf_text(tmp_path / "bad.pdf")
    assert "bad.pdf" in str(caught.value)


def test_without_pdftotext_the_error_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    with pytest.raises(DataFileError, match="poppler-utils"):
        pdf.pdf_text(tmp_path / "x.pdf")
