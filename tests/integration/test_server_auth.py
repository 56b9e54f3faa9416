"""The assembled server: predict keyed per keel.yaml, admin routes need the admin scope, audited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SPEC = """\
service: {{name: keyed, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
guards: {{require_api_key: {keyed}{extra}}}
"""
BODY = {"instances": [{"a": 1.0, "b": 2}]}
FLAG = {"model": "adder", "rules": [{"tenants": ["acme"], "serve": "1"}]}


def _client(tmp_path: Path, keyed: bool, extra: str = "",
            scopes: tuple[str, ...] = ("admin", "predict")) -> tuple[TestClient, dict[str, str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, keyed=str(keyed).lower(),
                                                    extra=extra))
    resolved = load_spec(tmp_path / "keel.yaml")
    app = build_server_app(resolved, freeze_gc=False)
    engine = create_engine(resolved.storage_url)
    store = ApiKeyStore(engine)
    made = {scope: store.create(scopes=[scope.rstrip("2")], name=f"{scope}-key",
                                created_by="t").plaintext for scope in scopes}
    engine.dispose()
    return TestClient(app), made


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    client, made = _client(tmp_path, keyed=True)
    with client:
        yield client, made, tmp_path


def test_predict_needs_a_predict_key_when_keel_yaml_says_so(
        keyed: tuple[TestClient, dict[str, str], Path]) -> None:
    client, made, _ = keyed
    none = client.post("/v1/models/adder:predict", json=BODY)
    assert none.status_code == 401 and "WWW-Authenticate" in none.headers
    wrong = client.post("/v1/models/adder:predict", json=BODY,
                        headers={"authorization": "Bearer kw_000000000000_nope"})
    assert wrong.status_code == 401
    for key in made.values():  # admin implies predict
        ok = client.post("/v1/models/adder:predict", json=BODY, headers={"x-api-key": key})
        assert ok.status_code == 200, ok.text
    v2 = client.post("/v2/models/adder/infer", json={"inputs": [
        {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "b", "shape": [1], "datatype": "INT64", "data": [2]}]})
    assert v2.status_code == 401
    feedback = client.post("/v1/feedback", json={"labels": [{"prediction_id": "x",
                                                             "label": 1}]})
    assert feedback.status_code == 401


def test_admin_routes_need_the_admin_scope_and_are_audited(
        keyed: tuple[TestClient, dict[str, str], Path]) -> None:
    client, made, project = keyed
    assert client.put("/v1/admin/flags/f", json=FLAG).status_code == 401
    under = client.put("/v1/admin/flags/f", json=FLAG,
                       headers={"authorization": f"Bearer {made['predict']}"})
    assert under.status_code == 403 and "insufficient_scope" in under.headers["WWW-Authenticate"]
    ok = client.put("/v1/admin/flags/f", json=FLAG,
                    headers={"authorization": f"Bearer {made['admin']}"})
    assert ok.status_code == 200, ok.text
    engine = create_engine(load_spec(project / "keel.yaml").storage_url)
    audit = AuditLog(engine)
    entries = audit.query(action="flag.put")
    assert [(e.actor, e.target) for e in entries] == [("admin-key", "f")]
    assert audit.verify().ok
    engine.dispose()


def test_open_predict_when_keys_are_not_required(tmp_path: Path) -> None:
    client, made = _client(tmp_path, keyed=False)
    with client:
        assert client.post("/v1/models/adder:predict", json=BODY).status_code == 200
        assert client.get("/v1/admin/flags").status_code == 401  # admin is never open
        assert client.get("/v1/admin/flags",
                          headers={"x-api-key": made["admin"]}).status_code == 200


def test_a_changed_keel_yaml_is_audited_once(tmp_path: Path) -> None:
    _client(tmp_path, keyed=False)
    _client(tmp_path, keyed=False)  # same file: nothing new
    _client(tmp_path, keyed=True)  # changed: recorded, with the previous digest
    engine = create_engine(load_spec(tmp_path / "keel.yaml").storage_url)
    loads = AuditLog(engine).query(action="config.load")
    engine.dispose()
    assert len(loads) == 2
    assert loads[1].details["previous"] == loads[0].details["sha256"] != loads[1].details["sha256"]


INFO_ROUTES = ("/v2/models/adder", "/v2/models/adder/versions/1", "/v1/models/adder",
               "/v1/models/adder@1")


def test_model_info_routes_follow_the_predict_key_rule(
        keyed: tuple[TestClient, dict[str, str], Path]) -> None:
    client, made, _ = keyed
    for path in INFO_ROUTES:
        none = client.get(path)
        assert none.status_code == 401, (path, none.text)
        assert none.json()["details"][0]["rule"] == "api_key_required"
        ok = client.get(path, headers={"x-api-key": made["predict"]})
        assert ok.status_code == 200, (path, ok.text)
    # readiness is a probe: it loads nothing and stays open
    assert client.get("/v2/models/adder/ready").status_code == 200


def test_an_unknown_version_is_not_loaded_for_a_client_without_a_key(
        keyed: tuple[TestClient, dict[str, str], Path]) -> None:
    client, _, _ = keyed
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    before = {t.label for t in gateway.loaded()}
    for path in ("/v2/models/adder/versions/1", "/v1/models/adder@champion"):
        assert client.get(path).status_code == 401
    assert {t.label for t in gateway.loaded()} == before


def test_version_refs_keep_version_numbers_from_predict_keys(tmp_path: Path) -> None:
    client, made = _client(tmp_path, keyed=True, extra=", version_refs: aliases")
    predict = {"x-api-key": made["predict"]}
    with client:
        for call in (
            lambda h: client.post("/v1/models/adder@1:predict", json=BODY, headers=h),
            lambda h: client.post("/v1/models/adder:predict", json=BODY,
                                  headers={**h, "x-keel-model-ref": "1"}),
            lambda h: client.get("/v2/models/adder/versions/1", headers=h),
        ):
            refused = call(predict)
            assert refused.status_code == 403, refused.text
            assert refused.json()["details"] == [
                {"path": "model_ref", "rule": "version_refs", "got": "1"}]
            assert "guards.version_refs" in refused.json()["error"]
            assert call({"x-api-key": made["admin"]}).status_code == 200  # admins may
        alias = client.post("/v1/models/adder@champion:predict", json=BODY, headers=predict)
        assert alias.status_code == 200, alias.text


def test_every_route_that_reads_a_body_takes_guards_max_body_bytes(tmp_path: Path) -> None:
    client, made = _client(tmp_path, keyed=False, extra=", max_body_bytes: 2000")
    big = b'{"labels": [' + b",".join([b'{"prediction_id": "p", "label": 1}'] * 100) + b"]}"
    admin = {"x-api-key": made["admin"], "content-type": "application/json"}
    with client:
        answers = []
        for method, path in (("POST", "/v1/feedback"), ("POST", "/v1/models/adder:predict"),
                             ("POST", "/v2/models/adder/infer"),
                             ("PUT", "/v1/admin/flags/f")):
            for body in (big, iter([big[i:i + 500] for i in range(0, len(big), 500)])):
                r = client.request(method, path, content=body, headers=admin)
                assert r.status_code == 413, (path, r.text)
                answers.append(r.json()["error"])
        assert len(set(answers)) == 1 and "2000 bytes (guards.max_body_bytes)" in answers[0]
        ok = client.post("/v1/feedback", headers=admin, content=iter(
            [b'{"labels": [{"prediction_id": ', b'"p", "label": 1}]}']))
        assert ok.status_code == 200, ok.text


def _label(client: TestClient, pid: str, label: int, key: str | None = None) -> Any:
    return client.post("/v1/feedback", json={"labels": [{"prediction_id": pid, "label": label}]},
                       headers={"x-api-key": key} if key else {})


def test_feedback_needs_the_feedback_scope_once_any_key_exists(tmp_path: Path) -> None:
    """Issue 13 item 9: predict open does not mean anyone may relabel predictions."""
    client, made = _client(tmp_path, keyed=False, scopes=("admin", "predict", "feedback"))
    with client:
        pid = client.post("/v1/models/adder:predict", json=BODY).json()["prediction_ids"][0]
        anonymous = _label(client, pid, 1)
        assert anonymous.status_code == 401 and "'feedback' scope" in anonymous.json()["error"]
        predict_only = _label(client, pid, 1, made["predict"])
        assert predict_only.status_code == 403
        assert predict_only.json()["details"][0]["rule"] == "scope"
        ok = _label(client, pid, 1, made["feedback"])
        assert ok.status_code == 200 and ok.json()["stored"] == 1, ok.text
        assert _label(client, pid, 0, made["admin"]).status_code == 200  # admin implies it
    engine = create_engine(load_spec(tmp_path / "keel.yaml").storage_url)
    with engine.connect() as conn:
        sources = [r[0] for r in conn.execute(text(
            "SELECT source FROM label_history UNION ALL SELECT source FROM labels"))]
    relabels = AuditLog(engine).query(action="label.relabel")
    engine.dispose()
    feedback_id, admin_id = made["feedback"].split("_")[1], made["admin"].split("_")[1]
    assert sources == [f"api:key:{feedback_id} (feedback-key)",
                       f"api:key:{admin_id} (admin-key)"]
    assert [(e.actor, e.details["relabelled"]) for e in relabels] == [
        (f"key:{admin_id} (admin-key)", 1)]


def test_feedback_is_open_without_keys_unless_required(tmp_path: Path) -> None:
    client, _ = _client(tmp_path / "a", keyed=False, scopes=())
    with client:
        assert _label(client, "unknown-id", 1).status_code == 200
    client, _ = _client(tmp_path / "b", keyed=False, extra=", feedback_auth: required",
                           scopes=())
    with client:
        assert _label(client, "unknown-id", 1).status_code == 401
    client, _ = _client(tmp_path / "c", keyed=False, extra=", feedback_auth: open",
                           scopes=("predict",))
    with client:
        assert _label(client, "unknown-id", 1).status_code == 200


def test_relabels_can_be_kept_to_the_original_labeller(tmp_path: Path) -> None:
    client, made = _client(tmp_path, keyed=False, extra=", relabel: same_labeller",
                           scopes=("admin", "feedback", "feedback2"))
    with client:
        pid = client.post("/v1/models/adder:predict", json=BODY).json()["prediction_ids"][0]
        assert _label(client, pid, 1, made["feedback"]).status_code == 200
        other = _label(client, pid, 0, made["feedback2"])
        assert other.status_code == 403, other.text
        detail = other.json()["details"][0]
        assert (detail["path"], detail["rule"], detail["got"]) == (
            "labels[0].prediction_id", "relabel_owner", pid)
        assert "feedback-key" in detail["message"]
        assert _label(client, pid, 1, made["feedback2"]).json()["duplicates"] == 1
        assert _label(client, pid, 0, made["feedback"]).json()["relabelled"] == 1
        assert _label(client, pid, 1, made["admin"]).json()["relabelled"] == 1


def test_revoking_a_key_over_http_takes_effect_at_once_and_is_audited(tmp_path: Path) -> None:
    """Issue 13 item 16: DELETE /v1/admin/keys/{id} (admin scope, audited); the revoking server
    refuses the key from the next request on, another server within the cache bound."""
    client, made = _client(tmp_path, keyed=True)
    other = TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"), freeze_gc=False))
    predict = {"x-api-key": made["predict"]}
    admin = {"x-api-key": made["admin"]}
    key_id = made["predict"].split("_")[1]
    with client, other:
        for app in (client, other):  # both servers have verified (and cached) the key
            assert app.post("/v1/models/adder:predict", json=BODY,
                            headers=predict).status_code == 200
        assert client.delete(f"/v1/admin/keys/{key_id}", headers=predict).status_code == 403
        missing = client.delete("/v1/admin/keys/000000000000", headers=admin)
        assert missing.status_code == 404 and missing.json()["details"][0]["rule"] == "key_exists"
        revoked = client.delete(f"/v1/admin/keys/{key_id}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["active"] is False, revoked.text
        assert client.post("/v1/models/adder:predict", json=BODY,
                           headers=predict).status_code == 401
        listed = client.get("/v1/admin/keys", headers=admin).json()
        assert {k["id"]: k["active"] for k in listed}[key_id] is False
        deadline = time.monotonic() + 5.0 + 2.0  # ApiKeyStore.cache_seconds, plus slack
        while other.post("/v1/models/adder:predict", json=BODY,
                         headers=predict).status_code == 200:
            assert time.monotonic() < deadline, "another server kept a revoked key"
            time.sleep(0.2)
    engine = create_engine(load_spec(tmp_path / "keel.yaml").storage_url)
    entries = AuditLog(engine).query(action="key.revoke")
    engine.dispose()
    assert [(e.actor, e.target) for e in entries] == [("admin-key", key_id)]
