"""Data files (CSV, TSV, Parquet, JSON lines) as Arrow tables: the readers every command shares.

See :mod:`keelwork.adapters.data.readers`. Importing this package imports no pyarrow.
"""

from __future__ import annotations

from keelwork.adapters.data.readers import (
    Format,
    detect_format,
    iter_batches,
    read_header,
    read_table,
    row_count,
)

__all__ = ["Format", "detect_format", "iter_batches", "read_header", "read_table", "row_count"]
