"""The sealed form of a payload value (see :mod:`.subject_keys`): AES-256-GCM under a subject's
key, bound to its key id and column, and how a sealed value is told apart and opened."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

#: Marks a sealed payload value.
PREFIX = "~k1:"
#: Hex characters of the key id in a sealed value (128 bits of the subject digest).
KEY_ID_HEX = 32
#: The payload columns that are sealed.
SEALED_COLUMNS = ("inputs", "outputs", "request_meta")
#: What a payload whose key is gone reads as, per column (JSON text).
ERASED = {"inputs": "null", "outputs": "null", "request_meta": '{"payload_erased":true}'}
#: Characters before a sealed value's base64 body (``~k1:<key id>:``).
SEALED_HEAD = len(PREFIX) + KEY_ID_HEX + 1


_AESGCM: Any = None


def aesgcm(key: bytes) -> Any:
    """An AES-GCM cipher of ``key`` (the library imported on first use)."""
    global _AESGCM
    if _AESGCM is None:  # imported on first use: `import keelwork` stays light
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        _AESGCM = AESGCM
    return _AESGCM(key)


def seal(key: bytes, key_id: str, column: str, plain: str) -> str:
    """``plain`` (JSON text) sealed under ``key`` as a column value (see the module text)."""
    return _seal(aesgcm(key), key_id, column, plain)


def _seal(aead: Any, key_id: str, column: str, plain: str) -> str:
    nonce = os.urandom(12)
    body = aead.encrypt(nonce, plain.encode("utf-8", "surrogatepass"),
                        f"{key_id}:{column}".encode())
    return f"{PREFIX}{key_id}:{base64.b64encode(nonce + body).decode('ascii')}"


def unseal(key: bytes, column: str, value: str) -> str:
    """The JSON text of a sealed value.

    Raises:
        ValueError: ``value`` is not sealed, or fails authentication under ``key`` (a wrong
            key, a changed byte, or a value moved from another column).
    """
    key_id = sealed_key_id(value)
    if key_id is None:
        raise ValueError("not a sealed payload value")
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.b64decode(value[SEALED_HEAD:], validate=True)
        plain = aesgcm(key).decrypt(raw[:12], raw[12:], f"{key_id}:{column}".encode())
    except (InvalidTag, ValueError) as exc:
        raise ValueError("the sealed payload does not open with this key") from exc
    return bytes(plain).decode("utf-8", "surrogatepass")


def sealed_key_id(value: Any) -> str | None:
    """The key id of a sealed value, or None for anything else."""
    if isinstance(value, str) and value.startswith(PREFIX) and len(value) > SEALED_HEAD \
            and value[SEALED_HEAD - 1] == ":":
        return value[len(PREFIX):SEALED_HEAD - 1]
    return None


#: A key, ready to seal with: ``(key, AESGCM, value head "~k1:<id>:", associated data by
#: column)``.
Sealer = tuple[bytes, Any, str, dict[str, bytes]]


def sealer(key_id: str, key: bytes) -> Sealer:
    return (key, aesgcm(key), f"{PREFIX}{key_id}:",
            {c: f"{key_id}:{c}".encode() for c in SEALED_COLUMNS})


def key_id(secret: bytes, subject: str) -> str:
    """The key id of ``subject``: the first 128 bits (hex) of its keyed digest, HMAC-SHA256
    under the project's subject key (the digest the erasure tombstone records)."""
    return hmac.digest(secret, subject.encode("utf-8", "surrogatepass"),
                       hashlib.sha256).hex()[:KEY_ID_HEX]


__all__ = [
    "ERASED",
    "KEY_ID_HEX",
    "PREFIX",
    "SEALED_COLUMNS",
    "SEALED_HEAD",
    "Sealer",
    "aesgcm",
    "key_id",
    "seal",
    "sealed_key_id",
    "sealer",
    "unseal",
]
