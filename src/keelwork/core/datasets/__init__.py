"""Dataset snapshots' domain: versions, references, the content hash, profiles and diffs.

Pure logic on in-memory Arrow tables (no file or database I/O). Storage lives in
``keelwork.adapters.stores.datasets``; pyarrow and numpy are imported inside the functions.

- :mod:`~keelwork.core.datasets.model`: names, references and :class:`DatasetVersion`.
- :mod:`~keelwork.core.datasets.canonical`: canonical types, the content hash (what the sha256
  of a snapshot covers) and subject-key hashing into erasure buckets.
- :mod:`~keelwork.core.datasets.profile`: per-column profiles (:func:`compute_profile`).
- :mod:`~keelwork.core.datasets.compare`: ``keel data diff`` (:func:`diff`, :func:`column_shift`).
"""

from __future__ import annotations

from keelwork.core.datasets.canonical import (
    CONTENT_TAG,
    SUBJECT_BUCKET_BITS,
    canonicalize,
    content_sha256,
    sort_keys,
    subject_buckets,
    subject_hash,
)
from keelwork.core.datasets.compare import (
    PSI_ALERT,
    ColumnShift,
    DatasetDiff,
    SchemaChange,
    column_shift,
    diff,
)
from keelwork.core.datasets.model import (
    DatasetRef,
    DatasetVersion,
    check_dataset_name,
    looks_like_snapshot_ref,
    parse_dataset_ref,
    utc_now,
)
from keelwork.core.datasets.profile import (
    PROFILE_KIND,
    PROFILE_VERSION,
    QUANTILES,
    CategoryStats,
    ColumnProfile,
    DatasetProfile,
    NumericStats,
    compute_profile,
)

__all__ = [
    "CONTENT_TAG",
    "PROFILE_KIND",
    "PROFILE_VERSION",
    "PSI_ALERT",
    "QUANTILES",
    "SUBJECT_BUCKET_BITS",
    "CategoryStats",
    "ColumnProfile",
    "ColumnShift",
    "DatasetDiff",
    "DatasetProfile",
    "DatasetRef",
    "DatasetVersion",
    "NumericStats",
    "SchemaChange",
    "canonicalize",
    "check_dataset_name",
    "column_shift",
    "compute_profile",
    "content_sha256",
    "diff",
    "looks_like_snapshot_ref",
    "parse_dataset_ref",
    "sort_keys",
    "subject_buckets",
    "subject_hash",
    "utc_now",
]
