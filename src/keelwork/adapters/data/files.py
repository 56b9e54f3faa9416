"""Data files on disk: their format from the suffix, opening them, naming their problems.

Shared by the format readers of :mod:`keelwork.adapters.data`.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final, Literal, cast

from keelwork.errors import DataFileError

Format = Literal["csv", "tsv", "parquet", "jsonl"]
_SUFFIXES: Final[dict[str, Format]] = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
                                       ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
ENCODING_HINT: Final = ("save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT` for a "
                        "Latin-1 file")


# --------------------------------------------------------------------------- formats, files
def detect_format(path: str | Path) -> Format:
    """The format of a data file, from its suffix.

    Args:
        path: The file (it need not exist).

    Returns:
        ``"csv"``, ``"tsv"``, ``"parquet"`` or ``"jsonl"``.

    Raises:
        DataFileError: The suffix is not one of the known ones.
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = (suffixes[-2] if len(suffixes) > 1 else "") if gz else (suffixes[-1] if suffixes
                                                                      else "")
    fmt = _SUFFIXES.get(suffix)
    if fmt is None or (gz and fmt == "parquet"):
        got = "".join(p.suffixes[-2:] if gz else p.suffixes[-1:]) or "no suffix"
        raise DataFileError(
            f"{p}: the format must be one of .csv, .tsv, .parquet, .pq, .jsonl, .ndjson (the "
            f"text ones optionally .gz); got {got}.", path=str(p))
    return fmt


def check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise DataFileError(f"{path}: is a directory, not a data file.", path=str(path))
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file.", path=str(path)) from None
    except PermissionError:
        raise DataFileError(f"{path}: cannot be read (permission denied).",
                            path=str(path)) from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror or exc}).",
                            path=str(path)) from None
    if size == 0:
        raise DataFileError(f"{path}: the file is empty (no header, no rows).", path=str(path))


def open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def wrap_error(path: Path, exc: Exception, what: str) -> DataFileError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataFileError(f"{path}: cannot be read as {what}: {text}.", path=str(path))


# --------------------------------------------------------------------------- locating problems
def first_bad_utf8(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, line, offset in line) of the first byte that is not UTF-8."""
    offset = 0
    with open_binary(path) as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return offset + exc.start, number, exc.start
            offset += len(line)
    return None


def encoding_error(path: Path, fmt: Format, header: Sequence[str] = ()) -> DataFileError:
    found = first_bad_utf8(path)
    if found is None:
        return DataFileError(f"{path}: is not valid UTF-8 text; {ENCODING_HINT}.",
                             path=str(path))
    offset, line, in_line = found
    column = None
    if fmt in ("csv", "tsv") and header:
        with open_binary(path) as f:
            for _ in range(line - 1):
                f.readline()
            head = f.readline()[:in_line].decode("utf-8", "replace")
        fields = next(csv.reader([head], delimiter="\t" if fmt == "tsv" else ","), [""])
        if 0 < len(fields) <= len(header):
            column = header[len(fields) - 1]
    where = f", column '{column}'" if column else ""
    return DataFileError(
        f"{path}, line {line}{where}: the byte at offset {offset} is not UTF-8; "
        f"{ENCODING_HINT}.",
        path=str(path), line=line, column=column)


__all__ = ["ENCODING_HINT", "Format", "check_file", "detect_format", "encoding_error",
           "first_bad_utf8", "open_binary", "wrap_error"]
