"""Model flags route requests per tenant / header / percentage; a broken flag never fails one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.registration import register_model
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SPEC = """\
service: {{name: flagged, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
flags:
  - {{name: acme-on-v2, model: adder, rules: [{{tenants: [acme], serve: "2"}}]}}
"""
BODY = {"instances": [{"a": 1.0, "b": 2}]}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    resolved = load_spec(tmp_path / "keel.yaml")
    with open_registry(tmp_path, resolved.storage_url) as registry:
        register_model(registry, "adder", "fakes:total", "python", options={"path": str(FIXTURES)},
                          aliases=["champion"])
        register_model(registry, "adder", "fakes:total", "python", options={"path": str(FIXTURES)})
    app = build_server_app(resolved, freeze_gc=False, monitor_interval_s=0)
    engine = create_engine(resolved.storage_url)
    admin = ApiKeyStore(engine).create(scopes=["admin"], name="ops", created_by="t").plaintext
    engine.dispose()
    with TestClient(app) as client:
        yield client, {"x-api-key": admin}


def _version(client: TestClient, **headers: str) -> str:
    r = client.post("/v1/models/adder:predict", json=BODY, headers=headers)
    assert r.status_code == 200, r.text
    return r.headers["x-model-version"]


def test_keel_yaml_flag_routes_a_tenant(served: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = served
    assert _version(client) == "1"
    assert _version(client, **{"x-tenant-id": "acme"}) == "2"
    assert _version(client, **{"x-tenant-id": "other"}) == "1"
    # an explicit reference wins over flags
    assert client.post("/v1/models/adder@1:predict", json=BODY,
                       headers={"x-tenant-id": "acme"}).headers["x-model-version"] == "1"


def test_admin_change_applies_to_the_next_request(
        served: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = served
    assert _version(client, **{"x-region": "eu"}) == "1"
    r = client.put("/v1/admin/flags/eu", headers=admin, json={
        "model": "adder", "rules": [{"headers": {"x-region": ["eu"]}, "serve": "2"}]})
    assert r.status_code == 200, r.text
    assert _version(client, **{"x-region": "eu"}) == "2"
    assert _version(client, **{"x-region": "us"}) == "1"
    users = {u: _version(client, **{"x-keel-user": u}) for u in ("u1", "u2", "u3")}
    assert set(users.values()) == {"1"}
    client.put("/v1/admin/flags/half", headers=admin, json={
        "model": "adder", "rules": [{"percentage": 50, "serve": "2"}]})
    picks = {u: _version(client, **{"x-keel-user": u}) for u in map(str, range(60))}
    assert 15 < sum(v == "2" for v in picks.values()) < 45
    again = {u: _version(client, **{"x-keel-user": u}) for u in map(str, range(60))}
    assert again == picks  # sticky


def test_a_flag_to_a_missing_version_is_refused_like_an_unknown_model(
        served: tuple[TestClient, dict[str, str]]) -> None:
    """Issue 11.5: `serve: "9"` was stored (200) and then every request silently fell back."""
    client, admin = served
    for rule, got in (({"tenants": ["acme"], "serve": "9"}, "9"),
                      ({"tenants": ["acme"], "serve": "beta"}, "beta")):
        r = client.put("/v1/admin/flags/acme-on-v2", headers=admin,
                       json={"model": "adder", "rules": [rule]})
        assert r.status_code == 422, r.text
        detail = r.json()["details"][0]
        assert (detail["path"], detail["rule"], detail["got"]) == ("rules.0.serve",
                                                                  "model_ref", got)
    assert _version(client, **{"x-tenant-id": "acme"}) == "2"  # keel.yaml's flag still holds


def test_a_flag_whose_alias_is_removed_later_falls_back_and_is_counted(
        served: tuple[TestClient, dict[str, str]], tmp_path: Path) -> None:
    client, admin = served
    with open_registry(tmp_path, load_spec(tmp_path / "keel.yaml").storage_url) as registry:
        registry.set_alias("adder", 2, "beta")
        r = client.put("/v1/admin/flags/acme-on-v2", headers=admin, json={
            "model": "adder", "rules": [{"tenants": ["acme"], "serve": "beta"}]})
        assert r.status_code == 200, r.text
        assert _version(client, **{"x-tenant-id": "acme"}) == "2"
        registry.remove_alias("adder", "beta")
    time.sleep(1.0)  # the server follows alias moves within a poll
    for _ in range(3):
        assert _version(client, **{"x-tenant-id": "acme"}) == "1"
    listed = client.get("/v1/admin/flags", headers=admin).json()
    assert listed["errors"] == {"acme-on-v2": 3}
    metrics = client.get("/metrics").text
    assert 'keelwork_flag_errors_total{flag="acme-on-v2"} 3.0' in metrics


def test_a_keel_yaml_flag_to_a_missing_version_stops_the_server_at_load(
        tmp_path: Path) -> None:
    from keelwork.errors import SpecError

    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES).replace('serve: "2"',
                                                                         'serve: "9"'))
    resolved = load_spec(tmp_path / "keel.yaml")
    with open_registry(tmp_path, resolved.storage_url) as registry:
        register_model(registry, "adder", "fakes:total", "python", options={"path": str(FIXTURES)})
    with pytest.raises(SpecError, match=r"flags\[acme-on-v2\]\.rules\.0\.serve = '9'"):
        build_server_app(resolved, freeze_gc=False, monitor_interval_s=0)


def test_full_server_metrics_pass_promtool(served: tuple[TestClient, dict[str, str]]) -> None:
    import shutil
    import subprocess

    client, _ = served
    _version(client)
    promtool = shutil.which("promtool")
    if promtool is None:
        import os

        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("CI must install promtool (Debian package prometheus)")
        pytest.skip("promtool missing: apt-get install prometheus")
    text = client.get("/metrics").text
    assert "keelwork_flag_errors_total" in text or "keelwork_flag_reload_failures" in text
    check = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                           capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
