"""Admin rollout routes: start, status with decisions, steer, rollback; errors are JSON with
the right status (404 unknown, 409 forbidden transition, 422 bad body)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, HTTPException
from fastapi.testclient import TestClient
from starlette.requests import Request

from keelwork.interfaces.http.app import create_app
from keelwork.interfaces.http.rollout_routes import rollout_router
from keelwork.service.registration import register_model
from rollout_project import make_project, open_project, register


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, int]]:
    service = open_project(make_project(tmp_path), poll_s=0.05)
    v2 = register(service, "good_twin")

    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close,
                     routers=[rollout_router(service, dependencies=[Depends(_admin)])])
    app.state.service = service
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, v2


def _admin(request: Request) -> None:
    """Stands in for require_scope("admin"): the router must run the dependencies it is given."""
    if request.headers.get("x-test-deny"):
        raise HTTPException(403, "denied")


def _version(c: TestClient, i: int) -> str:
    r = c.post("/v1/models/scorer:predict", json={"instances": [{"a": 1.0, "b": i}]})
    assert r.status_code == 200, r.text
    return r.headers["x-model-version"]


def test_start_status_steer_and_rollback(client: tuple[TestClient, int]) -> None:
    c, v2 = client
    denied = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2},
                    headers={"x-test-deny": "1"})
    assert denied.status_code == 403
    r = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2, "interval": "1h"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rollout"]["phase"] == "progressing" and body["rollout"]["weight"] == 50
    assert body["events"][0]["action"] == "begin"
    # The route re-synced this server: the split is in force before the answer.
    versions = {_version(c, i) for i in range(60)}
    assert versions == {"1", str(v2)}
    assert c.post("/v1/admin/rollouts/scorer/pause").json()["rollout"]["phase"] == "paused"
    r = c.post("/v1/admin/rollouts/scorer/pause")
    assert r.status_code == 409 and "is paused: it cannot pause" in r.text
    assert c.post("/v1/admin/rollouts/scorer/resume").json()["rollout"]["phase"] == \
        "progressing"
    promoted = c.post("/v1/admin/rollouts/scorer/promote").json()
    assert promoted["rollout"]["phase"] == "promoted"
    assert promoted["events"][-1]["actor"] == "admin-api"
    versions = {_version(c, i) for i in range(20)}
    assert versions == {str(v2)}
    r = c.post("/v1/admin/models/scorer/rollback")
    assert r.status_code == 200 and r.json() == {"model": "scorer", "champion": 1}
    versions = {_version(c, i) for i in range(20)}
    assert versions == {"1"}
    status = c.get("/v1/admin/rollouts/scorer").json()
    assert [e["action"] for e in status["events"]] == ["begin", "pause", "resume", "promote",
                                                       "rollback"]


@pytest.mark.parametrize("body,status,words", [
    ({"model": "nope", "to": 2}, 404, "No model named 'nope'"),
    ({"model": "scorer"}, 422, "'to' must be an integer"),
    ({"model": "scorer", "to": 99}, 404, "99"),
    ({"model": "scorer", "to": 2, "interval": "soon"}, 422, "positive duration"),
    ({"model": "scorer", "to": 2, "strategy": "blue-green"}, 422, "canary, shadow or ab"),
    ([1, 2], 422, "JSON object"),
])
def test_bad_starts_are_json_errors(client: tuple[TestClient, int], body: object,
                                    status: int, words: str) -> None:
    c, _ = client
    r = c.post("/v1/admin/rollouts", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


@pytest.mark.parametrize("field,value", [
    ("interval", 5), ("interval", ["1h"]), ("from", "x"), ("from", True), ("from", 2.5),
    ("strategy", 5),
])
def test_a_start_field_of_the_wrong_type_is_422_naming_it(client: tuple[TestClient, int],
                                                          field: str, value: object) -> None:
    """``"interval": 5`` was a 500 (AttributeError), so was ``"from": "x"``."""
    c, v2 = client
    r = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2, field: value})
    assert r.status_code == 422, r.text
    body = r.json()
    assert f"The field '{field}' must be" in body["error"]
    assert body["details"][0]["path"] == field and body["details"][0]["rule"] == "type"
    assert c.get("/v1/admin/rollouts/scorer").status_code == 404  # nothing stored


def test_a_refused_start_from_a_version_moves_no_alias(client: tuple[TestClient, int]) -> None:
    """a start with ``from`` refused for its interval, or for an active rollout, had
    already pinned the champion alias to ``from``: production traffic moved."""
    c, v2 = client
    registry = c.app.state.service.registry  # type: ignore[attr-defined]
    v3 = register(c.app.state.service, "good_twin")  # type: ignore[attr-defined]
    r = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2, "from": v3,
                                           "interval": "soon"})
    assert r.status_code == 422 and "positive duration" in r.text
    assert {_version(c, i) for i in range(20)} == {"1"}
    assert c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2,
                                              "interval": "1h"}).status_code == 201
    r = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2, "from": v3})
    assert r.status_code == 409 and "already has an active rollout" in r.text
    assert c.post("/v1/admin/rollouts/scorer/abort").status_code == 200
    assert {_version(c, i) for i in range(20)} == {"1"}
    assert registry.resolve("scorer@champion").version == 1


def test_unknown_action_and_missing_rollout(client: tuple[TestClient, int]) -> None:
    c, _ = client
    assert c.post("/v1/admin/rollouts/scorer/explode").status_code == 404
    r = c.get("/v1/admin/rollouts/scorer")
    assert r.status_code == 404 and "has no rollout" in r.text
    # Nothing to roll back to is a conflict with the model's history, not a missing thing.
    r = c.post("/v1/admin/models/scorer/rollback")
    assert r.status_code == 409 and "nothing to roll back to" in r.json()["error"]


def test_a_start_whose_version_does_not_load_is_422_and_stores_nothing(
        client: tuple[TestClient, int]) -> None:
    """Issue 13.8: it answered 500 and stayed stored as "progressing 5 %"."""
    from rollout_project import FIXTURES

    c, _ = client
    registry = c.app.state.service.registry  # type: ignore[attr-defined]
    broken = register_model(registry, "scorer", "faulty_models:no_such_function", "python",
                               options={"path": str(FIXTURES)}, verify=False).version
    r = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": broken})
    assert r.status_code == 422, r.text
    body = r.json()
    assert f"Version {broken} of 'scorer' cannot be rolled out" in body["error"]
    assert body["details"][0]["path"] == "to" and body["details"][0]["rule"] == "loads"
    assert c.get("/v1/admin/rollouts/scorer").status_code == 404  # nothing stored


def test_promote_after_an_abort_needs_force(client: tuple[TestClient, int]) -> None:
    c, v2 = client
    assert c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2,
                                              "interval": "1h"}).status_code == 201
    assert c.post("/v1/admin/rollouts/scorer/abort").status_code == 200
    assert c.post("/v1/admin/rollouts/scorer/retry").status_code == 200
    r = c.post("/v1/admin/rollouts/scorer/promote")
    assert r.status_code == 409 and "force=true" in r.json()["error"]
    r = c.post("/v1/admin/rollouts/scorer/promote?force=true")
    assert r.status_code == 200 and r.json()["rollout"]["phase"] == "promoted"
    assert "forced: version" in r.json()["events"][-1]["reason"]



def _tested_project(tmp_path: Path) -> tuple[Any, int]:
    """The rollout routes' app on a project whose model declares one behavioural test, and
    the version registered beside its champion (never tested)."""
    spec = make_project(tmp_path)
    text = spec.read_text()
    marker = '    artifact: "faulty_models:good"\n'
    assert marker in text
    spec.write_text(text.replace(marker, marker + "    tests: scorer-tests.yaml\n", 1))
    (tmp_path / "scorer-tests.yaml").write_text(
        "kind: keel-tests\nversion: 1\ntests:\n  - name: one\n    kind: minimum\n"
        "    cases: [{input: {a: 1.0, b: 1}, min_score: 0}]\n")
    service = open_project(spec, poll_s=0.05)
    v2 = register(service, "good_twin")
    return create_app(service.gateway, on_startup=service.start, on_shutdown=service.close,
                      routers=[rollout_router(service)]), v2


def test_declared_tests_gate_start_and_promote_until_skipped(tmp_path: Path) -> None:
    """A model with declared tests (models[].tests) that were never run on the challenger:
    start and promote are 409 naming ``keel test``; ``?skip_tests=true`` goes ahead and the
    event records it."""
    app, v2 = _tested_project(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/admin/rollouts", json={"model": "scorer", "to": v2})
        assert r.status_code == 409, r.text
        assert f"run 'keel test scorer@{v2}' first" in r.text and "skip_tests" in r.text
        r = c.post("/v1/admin/rollouts?skip_tests=true", json={"model": "scorer", "to": v2})
        assert r.status_code == 201, r.text
        assert "tests skipped (--skip-tests)" in r.json()["events"][0]["reason"]
        r = c.post("/v1/admin/rollouts/scorer/promote")
        assert r.status_code == 409 and "Cannot promote" in r.text
        r = c.post("/v1/admin/rollouts/scorer/promote?skip_tests=true")
        assert r.status_code == 200, r.text
        assert r.json()["rollout"]["phase"] == "promoted"
        assert "tests skipped" in r.json()["events"][-1]["reason"]



def test_declared_tests_gate_a_retry_until_skipped(tmp_path: Path) -> None:
    """``POST .../retry`` ran an aborted rollout again whatever its challenger's tests said;
    it is refused like a start (409) until ``?skip_tests=true``, which is recorded."""
    app, v2 = _tested_project(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/v1/admin/rollouts?skip_tests=true",
                      json={"model": "scorer", "to": v2, "interval": "1h"}).status_code == 201
        assert c.post("/v1/admin/rollouts/scorer/abort").status_code == 200
        r = c.post("/v1/admin/rollouts/scorer/retry")
        assert r.status_code == 409, r.text
        assert f"Cannot retry the rollout of version {v2}" in r.text and "skip_tests" in r.text
        assert c.get("/v1/admin/rollouts/scorer").json()["rollout"]["phase"] == "aborted"
        r = c.post("/v1/admin/rollouts/scorer/retry?skip_tests=true")
        assert r.status_code == 200, r.text
        assert r.json()["rollout"]["phase"] == "progressing"
        assert "tests skipped (--skip-tests)" in r.json()["events"][-1]["reason"]
