"""API key format, scopes, hashing and constant-time checks (pure, no store)."""

from __future__ import annotations

import hashlib

import pytest

from keelwork.core.auth import (
    ADMIN,
    FEEDBACK,
    PREDICT,
    Principal,
    check_key_name,
    check_scopes,
    generate_key,
    has_scope,
    hash_secret,
    parse_key,
    redact,
    secret_matches,
)
from keelwork.errors import AuthError


def test_generated_keys_have_the_documented_form_and_differ() -> None:
    keys = [generate_key() for _ in range(200)]
    assert len({k.plaintext for k in keys}) == 200 and len({k.key_id for k in keys}) == 200
    for key in keys[:20]:
        prefix, key_id, secret = key.plaintext.split("_", 2)
        assert prefix == "kw" and key_id == key.key_id and len(key_id) == 12
        assert len(secret) == 43  # 256 bits of URL-safe base64
        assert parse_key(key.plaintext) == (key_id, secret)
        assert key.hash == hash_secret(key_id, secret)
        assert key.plaintext not in repr(key) and secret not in repr(key)


def test_hash_is_domain_separated_and_binds_the_id() -> None:
    key = generate_key()
    _, key_id, secret = key.plaintext.split("_", 2)
    assert key.hash != hashlib.sha256(secret.encode()).hexdigest()
    assert hash_secret("000000000000", secret) != key.hash  # same secret, other key
    assert secret_matches(key.hash, key_id, secret)
    assert not secret_matches(key.hash, key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert not secret_matches(key.hash, "000000000000", secret)


@pytest.mark.parametrize("text", [None, "", "kw_", "Bearer x", "kw_ABCDEF123456_" + "a" * 43,
                                  "kw_abcdef123456_" + "a" * 42, "kw_abcdef123456_" + "a" * 44,
                                  "xx_abcdef123456_" + "a" * 43,
                                  "kw_abcdef123456_" + "a" * 42 + "!"])
def test_malformed_keys_parse_to_none(text: str | None) -> None:
    assert parse_key(text) is None


def test_surrounding_whitespace_is_tolerated() -> None:
    key = generate_key()
    assert parse_key(f"  {key.plaintext}\n") is not None


def test_scopes_admin_implies_predict() -> None:
    assert check_scopes(["Admin", " predict "]) == {ADMIN, PREDICT}
    assert has_scope({ADMIN}, PREDICT) and has_scope({ADMIN}, ADMIN)
    assert has_scope({PREDICT}, PREDICT) and not has_scope({PREDICT}, ADMIN)
    assert not has_scope(set(), PREDICT) and not has_scope({"bogus"}, PREDICT)
    principal = Principal("abcdef123456", "ci", frozenset({PREDICT}))
    assert principal.allows(PREDICT) and not principal.allows(ADMIN)
    assert principal.actor == "key:abcdef123456 (ci)"


def test_feedback_is_its_own_scope() -> None:
    """Issue 13 item 9: a predict key cannot send ground truth; admin can."""
    assert check_scopes(["feedback"]) == {FEEDBACK}
    assert not has_scope({PREDICT}, FEEDBACK) and not has_scope({FEEDBACK}, PREDICT)
    assert has_scope({ADMIN}, FEEDBACK) and not has_scope({FEEDBACK}, ADMIN)


@pytest.mark.parametrize("scopes", [[], ["root"], ["admin", "write"], [""]])
def test_unknown_or_missing_scopes_are_refused(scopes: list[str]) -> None:
    with pytest.raises(AuthError,
                       match="scopes must be among admin, feedback, predict, read, review"):
        check_scopes(scopes)


def test_key_names() -> None:
    assert check_key_name("ci deployer@acme") == "ci deployer@acme"
    for bad in ("", " x", "x" * 129, "tab\tname", "-lead"):
        with pytest.raises(AuthError, match="name"):
            check_key_name(bad)


def test_redact_hides_the_secret() -> None:
    key = generate_key()
    assert redact(key.plaintext) == f"kw_{key.key_id}_***"
    assert redact("garbage") == "***"
