"""``/dashboard`` routes: open without keys, the read scope with keys on (header, or the form's
cookie), the key never echoed, JSON errors on the JSON route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.adapters.stores.rollout_store import RolloutStore
from keelwork.interfaces.http.auth import install_problem_handler
from keelwork.interfaces.http.dashboard_routes import COOKIE, dashboard_router
from keelwork.service.dashboard import Dashboard
from keelwork.spec.model import KeelSpec

SPEC = KeelSpec.model_validate({
    "service": {"name": "svc", "owners": ["ml@example.com"]},
    "models": [{"name": "m", "runtime": "python", "artifact": "a:b"}]})


class Keys:
    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store
        self.read = store.create(scopes=["read"], name="viewer", created_by="t").plaintext
        self.admin = store.create(scopes=["admin"], name="ops", created_by="t").plaintext
        self.predict = store.create(scopes=["predict"], name="app", created_by="t").plaintext


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Dashboard, ApiKeyStore]]:
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    registry = open_registry(tmp_path, url, audit=False)
    engine = make_engine(url)
    rollouts = RolloutStore(registry.engine)
    rollouts.ensure_schema()
    keys = ApiKeyStore(engine)
    keys.ensure_schema()
    yield Dashboard(SPEC, engine, registry, rollouts), keys
    registry.close()
    engine.dispose()


def _client(dashboard: Dashboard, keys: ApiKeyStore, *, required: bool = False) -> TestClient:
    app = FastAPI()
    install_problem_handler(app)
    app.include_router(dashboard_router(dashboard, keys, require_api_key=required))
    return TestClient(app)


def test_open_while_no_key_exists(parts: tuple[Dashboard, ApiKeyStore]) -> None:
    client = _client(*parts)
    page = client.get("/dashboard")
    assert page.status_code == 200 and "svc" in page.text and "no data" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert client.get("/dashboard.json").json()["models"][0]["name"] == "m"


def test_required_keys_ask_for_one_with_a_form(parts: tuple[Dashboard, ApiKeyStore]) -> None:
    client = _client(*parts, required=True)
    page = client.get("/dashboard")
    assert page.status_code == 401 and 'action="/dashboard/login"' in page.text
    assert page.headers["www-authenticate"].startswith("Bearer")
    assert "not valid" not in page.text  # nothing was tried yet
    body = client.get("/dashboard.json").json()
    assert set(body) == {"error", "details"}


def test_read_scope_by_header_and_by_the_forms_cookie(
        parts: tuple[Dashboard, ApiKeyStore]) -> None:
    dashboard, store = parts
    keys = Keys(store)
    client = _client(dashboard, store)
    for key in (keys.read, keys.admin):
        assert client.get("/dashboard", headers={"Authorization": f"Bearer {key}"}
                          ).status_code == 200
    refused = client.get("/dashboard", headers={"x-api-key": keys.predict})
    assert refused.status_code == 403 and keys.predict not in refused.text
    assert client.get("/dashboard.json", headers={"x-api-key": keys.predict}
                      ).status_code == 403

    bad = client.post("/dashboard/login", data={"key": keys.read[:-2] + "xx"})
    assert bad.status_code == 401 and "not valid" in bad.text and keys.read[:-2] not in bad.text
    assert COOKIE not in bad.cookies
    under = client.post("/dashboard/login", data={"key": keys.predict})
    assert under.status_code == 403
    done = client.post("/dashboard/login", data={"key": keys.read}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    cookie = done.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "path=/dashboard" in cookie.lower() and "secure" not in cookie.lower()  # http here
    assert keys.read not in done.text
    page = client.get("/dashboard")  # the test client keeps the cookie, as a browser does
    assert page.status_code == 200 and keys.read not in page.text

    store.revoke(keys.read.split("_")[1], actor="t")
    assert client.get("/dashboard").status_code == 401
    client.post("/dashboard/logout")
    assert client.get("/dashboard").status_code == 401
