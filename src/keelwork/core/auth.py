"""API keys: their format, scopes, hashing and constant-time checking (no storage here).

Key format: ``kw_<id>_<secret>``, where ``id`` is 12 lower-case hex digits (48 random bits;
public: it names the key in listings, audit entries and revocation) and ``secret`` is 43
URL-safe base64 characters (256 random bits from :mod:`secrets`). The ``kw_`` prefix lets
secret scanners (GitHub's, gitleaks) recognise a leaked key.

Only a hash is stored: ``SHA-256("keelwork.api_key.v1\\0" || id || "\\0" || secret)``. No slow
KDF (bcrypt, scrypt, Argon2) is needed: those exist to make guessing *low-entropy* passwords
expensive, but a 256-bit random secret cannot be guessed whatever the hash costs (2^255
tries on average), and a fast hash keeps the check per request in microseconds instead of the
tens of milliseconds a KDF would add to every prediction. The id inside the hash binds a
secret to its key, so a stored hash cannot be moved to another key's row. Comparison uses
:func:`hmac.compare_digest` so the time taken does not reveal how many leading characters
matched.

Scopes: ``predict`` (the predict routes), ``feedback`` (``POST /v1/feedback``: ground truth,
which feeds the quality monitors and the ``min_accuracy`` rollout gate, so a predict client
must not be able to relabel), ``read`` (the read-only ``/dashboard``: traffic, SLOs, drift,
rollouts, alerts; a viewer cannot predict, label or steer), ``review`` (the human review
queue: ``/review`` and ``/v1/review``; a reviewer sees only the queued predictions, as stored,
and labels only those; the key's name is the reviewer, so a verdict is attributed to it) and
``admin`` (register, aliases, rollouts, flags, config, keys). ``admin`` implies the others: an
admin can already choose which model answers and rotate any key, so withholding them would
protect nothing and only make operators carry more keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from keelwork.errors import AuthError

ADMIN: Final = "admin"
PREDICT: Final = "predict"
FEEDBACK: Final = "feedback"
READ: Final = "read"
REVIEW: Final = "review"
#: Every scope, and the scopes each one grants.
SCOPES: Final[dict[str, frozenset[str]]] = {
    ADMIN: frozenset({ADMIN, PREDICT, FEEDBACK, READ, REVIEW}),
    PREDICT: frozenset({PREDICT}),
    FEEDBACK: frozenset({FEEDBACK}),
    READ: frozenset({READ}),
    REVIEW: frozenset({REVIEW}),
}
KEY_PREFIX: Final = "kw"
_DOMAIN = b"keelwork.api_key.v1\x00"
_ID_HEX = 12
_SECRET_BYTES = 32
_KEY_RE = re.compile(r"kw_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:/+-]{0,127}")


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key: ``plaintext`` is shown once, only ``key_id`` and ``hash`` are stored."""

    key_id: str
    plaintext: str
    hash: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"GeneratedKey(key_id={self.key_id!r}, plaintext='***', hash={self.hash!r})"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified key belongs to: the key's id, its name and the scopes it grants."""

    key_id: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How audit entries name this caller: ``key:<id> (<name>)``."""
        return f"key:{self.key_id} ({self.name})" if self.name else f"key:{self.key_id}"

    def allows(self, scope: str) -> bool:
        """Whether this key may use routes of ``scope``."""
        return has_scope(self.scopes, scope)


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes as a set, each known.

    Raises:
        AuthError: no scope, or an unknown one.
    """
    found = frozenset(s.strip().lower() for s in scopes if s and s.strip())
    unknown = sorted(found - SCOPES.keys())
    if unknown or not found:
        got = ", ".join(unknown) if unknown else "none"
        raise AuthError(f"An API key's scopes must be among {', '.join(sorted(SCOPES))}; "
                        f"got {got}.")
    return found


def check_key_name(name: str) -> str:
    """A key's display name: 1-128 letters, digits, space and ``._@:/+-``, not starting with
    punctuation.

    Raises:
        AuthError: the name is empty or has other characters.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise AuthError("An API key's name must be 1-128 characters of letters, digits, space "
                        f"and ._@:/+- starting with a letter or digit; got {name!r}.")
    return name


def has_scope(granted: Iterable[str], required: str) -> bool:
    """Whether keys with ``granted`` scopes may use routes that require ``required``."""
    return any(required in SCOPES.get(scope, ()) for scope in granted)


def generate_key() -> GeneratedKey:
    """A new random key and its hash."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(_SECRET_BYTES)  # 32 bytes -> 43 characters, no padding
    plaintext = f"{KEY_PREFIX}_{key_id}_{secret}"
    return GeneratedKey(key_id=key_id, plaintext=plaintext, hash=hash_secret(key_id, secret))


def parse_key(text: str | None) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else ``None`` (never raises)."""
    if not text or not isinstance(text, str):
        return None
    match = _KEY_RE.fullmatch(text.strip())
    if match is None:
        return None
    return match["id"], match["secret"]


def hash_secret(key_id: str, secret: str) -> str:
    """The stored hash of a key (see the module docstring)."""
    return hashlib.sha256(_DOMAIN + key_id.encode("ascii") + b"\x00"
                          + secret.encode("ascii")).hexdigest()


def secret_matches(stored_hash: str, key_id: str, secret: str) -> bool:
    """Whether ``secret`` is the one ``stored_hash`` was made from, in constant time."""
    return hmac.compare_digest(hash_secret(key_id, secret).encode("ascii"),
                               stored_hash.encode("ascii"))


def redact(text: str) -> str:
    """A key with its secret hidden, for messages: ``kw_1a2b3c4d5e6f_***``."""
    parsed = parse_key(text)
    return f"{KEY_PREFIX}_{parsed[0]}_***" if parsed else "***"


__all__ = [
    "ADMIN",
    "FEEDBACK",
    "KEY_PREFIX",
    "PREDICT",
    "READ",
    "REVIEW",
    "SCOPES",
    "GeneratedKey",
    "Principal",
    "check_key_name",
    "check_scopes",
    "generate_key",
    "has_scope",
    "hash_secret",
    "parse_key",
    "redact",
    "secret_matches",
]
