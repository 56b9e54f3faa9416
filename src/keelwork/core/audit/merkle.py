"""RFC 6962 (Certificate Transparency) Merkle tree hashes and inclusion proofs over the audit log.

The hash chain proves the log is intact to whoever reads all of it; a Merkle root lets someone
who holds only the root (published, or signed by an auditor) check that one entry is in the
log with a proof of ``log2(n)`` hashes, without reading the rest. The leaves are the entries'
chain hashes in sequence order, so the root at size ``n`` commits to the first ``n`` entries.

Hashing follows RFC 6962 section 2.1 (unchanged in RFC 9162): ``leaf = SHA-256(0x00 || data)``,
``node = SHA-256(0x01 || left || right)``, the empty tree's root is ``SHA-256("")``, and a tree of
``n`` leaves splits at the largest power of two below ``n``. Inclusion proofs are the audit
paths of section 2.1.1 and are checked with the algorithm of RFC 9162 section 2.1.3.2. Written
here rather than taken from a library because the maintained Python packages for CT logs carry
whole clients (HTTP, certificates) for what is 60 lines, and the test pins this code to the
RFC's published vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of already-hashed leaves."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (RFC 6962 MTH) of ``leaves`` (raw leaf data)."""
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` (0-based) in the tree of ``leaves`` (raw leaf data).

    Raises:
        IndexError: ``index`` is not a leaf of the tree.
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"Leaf {index} is not in a tree of {len(leaves)} leaves.")
    return _path(index, [leaf_hash(d) for d in leaves])


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*_path(m, hashes[:k]), root_from_leaf_hashes(hashes[k:])]
    return [*_path(m - k, hashes[k:]), root_from_leaf_hashes(hashes[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """Whether ``proof`` shows raw leaf data ``leaf`` at ``index`` of the tree of ``size`` with
    ``root`` (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


__all__ = [
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_inclusion",
]
