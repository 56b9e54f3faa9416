"""API keys on both backends: shown once, stored hashed, verified, revoked, audited."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
from keelwork.core.auth import ADMIN, PREDICT, generate_key
from keelwork.errors import AuthError


@pytest.fixture
def parts(store_url: str) -> Iterator[tuple[ApiKeyStore, AuditLog]]:
    engine = make_engine(store_url)
    audit = AuditLog(engine)
    audit.ensure_schema()
    keys = ApiKeyStore(engine, audit, cache_seconds=0.0)
    keys.ensure_schema()
    keys.ensure_schema()  # idempotent
    yield keys, audit
    engine.dispose()


def test_create_verify_list_revoke(parts: tuple[ApiKeyStore, AuditLog],
                                   caplog: pytest.LogCaptureFixture) -> None:
    keys, audit = parts
    caplog.set_level(logging.DEBUG)
    admin = keys.create(scopes=["admin"], name="ops", created_by="ann")
    pred = keys.create(scopes=["predict"], name="web", created_by="ann")
    assert admin.plaintext.startswith(f"kw_{admin.info.key_id}_")

    principal = keys.verify(admin.plaintext)
    assert principal is not None and principal.key_id == admin.info.key_id
    assert principal.name == "ops" and principal.allows(ADMIN) and principal.allows(PREDICT)
    web = keys.verify(pred.plaintext)
    assert web is not None and web.allows(PREDICT) and not web.allows(ADMIN)

    # Only the hash is stored; the plaintext appears nowhere in the database or the logs.
    with keys.engine.connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM api_keys")))
        audit_dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")))
    secret = admin.plaintext.split("_", 2)[2]
    for haystack in (dump, audit_dump, caplog.text, repr(admin)):
        assert secret not in haystack

    listed = {k.key_id: k for k in keys.list()}
    assert set(listed) == {admin.info.key_id, pred.info.key_id}
    assert listed[admin.info.key_id].last_used_at is not None
    assert "hash" not in listed[admin.info.key_id].as_dict()

    info = keys.revoke(pred.info.key_id, actor="bob")
    assert info.revoked_by == "bob" and not info.active
    assert keys.verify(pred.plaintext) is None
    again = keys.revoke(pred.info.key_id, actor="eve")  # harmless, first revocation kept
    assert again.revoked_by == "bob"
    assert [k.key_id for k in keys.list(include_revoked=False)] == [admin.info.key_id]

    assert [(e.action, e.target, e.actor) for e in audit.query(limit=None)] == [
        ("key.create", admin.info.key_id, "ann"), ("key.create", pred.info.key_id, "ann"),
        ("key.revoke", pred.info.key_id, "bob")]
    assert audit.query(limit=None)[0].details == {"name": "ops", "scopes": ["admin"]}
    assert audit.verify().ok


def test_wrong_unknown_and_malformed_keys_are_refused(
        parts: tuple[ApiKeyStore, AuditLog]) -> None:
    keys, _ = parts
    real = keys.create(scopes=["predict"], name="web", created_by="ann")
    key_id, secret = real.plaintext.split("_", 2)[1:]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert keys.verify(f"kw_{key_id}_{flipped}") is None  # right id, wrong secret
    other = generate_key()
    assert keys.verify(other.plaintext) is None  # never stored
    for junk in (None, "", "Bearer", "kw_x_y", real.plaintext + "x"):
        assert keys.verify(junk) is None


def test_revocation_is_seen_by_another_store_after_its_cache(store_url: str) -> None:
    engine = make_engine(store_url)
    a = ApiKeyStore(engine, cache_seconds=3600.0)
    a.ensure_schema()
    b = ApiKeyStore(engine, cache_seconds=0.0)  # another server, no cache
    created = a.create(scopes=["admin"], name="ops", created_by="ann")
    assert a.verify(created.plaintext) is not None and b.verify(created.plaintext) is not None
    b.revoke(created.info.key_id, actor="bob")
    assert b.verify(created.plaintext) is None
    # a's cache still trusts it (documented: up to cache_seconds); a's own revoke clears it.
    assert a.verify(created.plaintext) is not None
    a.revoke(created.info.key_id, actor="bob")
    assert a.verify(created.plaintext) is None
    engine.dispose()


def test_bad_scope_name_and_unknown_id(parts: tuple[ApiKeyStore, AuditLog]) -> None:
    keys, audit = parts
    with pytest.raises(AuthError, match="got root"):
        keys.create(scopes=["root"], name="x", created_by="ann")
    with pytest.raises(AuthError, match="name"):
        keys.create(scopes=["admin"], name="", created_by="ann")
    with pytest.raises(AuthError, match="No API key has the id 'nope'"):
        keys.revoke("nope", actor="ann")
    assert keys.list() == [] and audit.query() == []
