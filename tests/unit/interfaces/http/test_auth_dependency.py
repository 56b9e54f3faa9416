"""API-key checks over HTTP: 401 without/with a bad key, 403 under-scoped, JSON error bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.testclient import TestClient

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.flag_store import FlagStore
from keelwork.core.auth import Principal, generate_key
from keelwork.interfaces.http.auth import (
    install_problem_handler,
    key_from_headers,
    predict_guard,
    require_scope,
)
from keelwork.interfaces.http.flag_routes import flag_router
from keelwork.service.flags.source import FlagSource


class Parts:
    def __init__(self, client: TestClient, keys: ApiKeyStore, audit: AuditLog,
                 admin: str, predict: str) -> None:
        self.client, self.keys, self.audit = client, keys, audit
        self.admin, self.predict = admin, predict


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    audit = AuditLog(engine)
    audit.ensure_schema()
    keys = ApiKeyStore(engine)
    keys.ensure_schema()
    admin = keys.create(scopes=["admin"], name="ops", created_by="test").plaintext
    web = keys.create(scopes=["predict"], name="web", created_by="test").plaintext
    flags = FlagStore(engine, audit)
    flags.ensure_schema()
    source = FlagSource([], flags)
    source.reload()

    app = FastAPI()
    install_problem_handler(app)
    admin_dep = Depends(require_scope("admin", keys))
    router = APIRouter(dependencies=[admin_dep])

    @router.get("/v1/admin/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        principal: Principal = request.state.principal
        return {"id": principal.key_id, "name": principal.name}

    app.include_router(router)
    app.include_router(flag_router(source, flags, ["sentiment"], dependencies=[admin_dep]))
    guard = predict_guard(keys)

    @app.post("/v1/models/{name}:predict")
    async def predict_route(request: Request, name: str) -> Response:
        denied = await guard(request)
        if denied is not None:
            return denied
        return JSONResponse({"model": name, "by": request.state.principal.name})

    with TestClient(app) as client:
        yield Parts(client, keys, audit, admin, web)
    engine.dispose()


def _assert_problem(response: Any, status: int, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "details"} and body["error"]
    assert body["details"][0]["rule"] == rule
    return body


def test_missing_key_is_401_with_www_authenticate(parts: Parts) -> None:
    response = parts.client.get("/v1/admin/whoami")
    body = _assert_problem(response, 401, "api_key_required")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "keel keys create --scope admin" in body["error"]


@pytest.mark.parametrize("make", [lambda p: "kw_nope", lambda p: generate_key().plaintext,
                                  lambda p: p.admin[:-1] + ("A" if p.admin[-1] != "A" else "B")])
def test_invalid_keys_are_401_and_never_echoed(parts: Parts, make: Any) -> None:
    key = make(parts)
    response = parts.client.get("/v1/admin/whoami", headers={"authorization": f"Bearer {key}"})
    _assert_problem(response, 401, "api_key_valid")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert key not in response.text


def test_revoked_key_is_401(parts: Parts) -> None:
    principal = parts.keys.verify(parts.admin)
    assert principal is not None
    parts.keys.revoke(principal.key_id, actor="test")
    _assert_problem(parts.client.get("/v1/admin/whoami", headers={"x-api-key": parts.admin}),
                    401, "api_key_valid")


def test_under_scoped_key_is_403(parts: Parts) -> None:
    response = parts.client.get("/v1/admin/whoami", headers={"x-api-key": parts.predict})
    body = _assert_problem(response, 403, "scope")
    assert "needs 'admin'" in body["error"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_admin_key_passes_both_headers_and_implies_predict(parts: Parts) -> None:
    for headers in ({"authorization": f"Bearer {parts.admin}"}, {"x-api-key": parts.admin},
                    {"Authorization": f"bearer  {parts.admin} "}):
        response = parts.client.get("/v1/admin/whoami", headers=headers)
        assert response.status_code == 200 and response.json()["name"] == "ops"
    response = parts.client.post("/v1/models/m:predict", headers={"x-api-key": parts.admin})
    assert response.json() == {"model": "m", "by": "ops"}


def test_predict_guard(parts: Parts) -> None:
    _assert_problem(parts.client.post("/v1/models/m:predict"), 401, "api_key_required")
    ok = parts.client.post("/v1/models/m:predict",
                           headers={"authorization": f"Bearer {parts.predict}"})
    assert ok.status_code == 200 and ok.json()["by"] == "web"


def test_admin_routes_record_the_key_as_the_actor(parts: Parts) -> None:
    flag = {"model": "sentiment", "rules": [{"tenants": ["eu"], "serve": "2"}]}
    assert parts.client.put("/v1/admin/flags/eu", json=flag).status_code == 401
    assert parts.client.put("/v1/admin/flags/eu", json=flag,
                            headers={"x-api-key": parts.predict}).status_code == 403
    response = parts.client.put("/v1/admin/flags/eu", json=flag,
                                headers={"x-api-key": parts.admin})
    assert response.status_code == 200, response.text
    entries = parts.audit.query(action="flag.*")
    assert [(e.action, e.target, e.actor) for e in entries] == [("flag.put", "eu", "ops")]


def test_key_from_headers_prefers_bearer() -> None:
    assert key_from_headers({"authorization": "Bearer a", "x-api-key": "b"}) == "a"
    assert key_from_headers({"authorization": "Basic a", "x-api-key": "b"}) == "b"
    assert key_from_headers({"authorization": "Bearer   "}) is None
    assert key_from_headers({}) is None


def test_unknown_scope_is_a_programming_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    with pytest.raises(ValueError, match="Unknown scope 'root'"):
        require_scope("root", ApiKeyStore(engine))
    engine.dispose()
