"""The snapshot use-case: read a data file, then store it as the next version of a dataset.

Reading goes through the shared data readers (:mod:`keelwork.adapters.data.readers`); the
dataset store (:mod:`keelwork.adapters.stores.datasets`) takes the table that was read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keelwork.adapters.data.readers import iter_batches
from keelwork.adapters.stores.dataset_files import Progress
from keelwork.core.datasets import DatasetVersion, check_dataset_name
from keelwork.errors import DataFileError
from keelwork.types import DatasetStoreProtocol


def snapshot_file(store: DatasetStoreProtocol, path: str | Path, name: str,
                  subject_column: str | None = None, *, created_by: str | None = None,
                  progress: Progress | None = None) -> DatasetVersion:
    """Read a data file and record it as the next version of dataset ``name``.

    Args:
        store: The dataset store.
        path: A CSV, Parquet or JSON Lines file (whatever the data readers accept).
        name: The dataset name (created on first snapshot).
        subject_column: The column naming the data subject of each row; the rows are then
            laid out so that one subject's rows can be erased without rewriting the rest.
        created_by: Who takes it; default the store's ``user`` (the ``user`` setting), else the
            OS user.
        progress: Called as rows are read and parts written.

    Returns:
        The new version, or the latest one when its content (and subject column) is equal.

    Raises:
        DataFileError: the file is unreadable, malformed, empty, or lacks the subject column.
        RegistryError: the name is invalid.
        StoreError: the database failed.
    """
    check_dataset_name(name)
    table = read_table(Path(path), progress)
    return store.snapshot_table(table, name, subject_column, source=str(Path(path).absolute()),
                                created_by=created_by, progress=progress)


def read_table(path: Path, progress: Progress | None = None) -> Any:
    """All rows of a data file as one Arrow table, through the shared data readers.

    Raises:
        DataFileError: the file is unreadable, malformed or holds no rows.
    """
    import pyarrow as pa


    batches, rows, schema = [], 0, None
    for _, batch in iter_batches(path):
        schema = batch.schema
        if batch.num_rows:
            batches.append(batch)
            rows += batch.num_rows
            if progress is not None:
                progress("reading", rows, None)
    if schema is None or rows == 0 or not schema.names:
        raise DataFileError(f"The data file '{path}' holds no rows; a snapshot needs at least "
                            "one row (and a header naming the columns for CSV).", path=str(path))
    return pa.Table.from_batches(batches)



__all__ = ["read_table", "snapshot_file"]
