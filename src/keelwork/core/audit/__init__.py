"""The audit log's pure logic: the hash chain (:mod:`.chain`) and Merkle proofs (:mod:`.merkle`).

Storage lives in :mod:`keelwork.adapters.stores.audit_store`.
"""

from __future__ import annotations

from keelwork.core.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    ChainHead,
    Reason,
    VerifyResult,
    canonical_bytes,
    canonical_details,
    entry_hash,
    format_ts,
    make_entry,
    parse_ts,
    verify_chain,
)

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "ChainHead",
    "Reason",
    "VerifyResult",
    "canonical_bytes",
    "canonical_details",
    "entry_hash",
    "format_ts",
    "make_entry",
    "parse_ts",
    "verify_chain",
]
