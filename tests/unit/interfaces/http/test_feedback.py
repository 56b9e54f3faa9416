"""POST /v1/feedback through the real app and store: labels attach to served predictions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.interfaces.http.app import create_app
from keelwork.interfaces.http.feedback import MAX_LABELS, feedback_router
from keelwork.service.assembly import open_service
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"

SPEC = """\
service: {{name: feedback-test, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs:
    - {{name: a, type: float}}
    - {{name: b, type: integer}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[TestClient]:
    resolved = load_spec(project / "keel.yaml")
    service = open_service(resolved)
    engine = make_engine(resolved.storage_url)
    store = LabelStore(engine)
    store.ensure_schema()
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close,
                     routers=[feedback_router(store)])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    engine.dispose()


def _labels(project: Path) -> dict[str, str]:
    con = sqlite3.connect(project / ".keel" / "keel.db")
    try:
        return dict(con.execute("SELECT prediction_id, label FROM labels").fetchall())
    finally:
        con.close()


def _predict(client: TestClient, n: int) -> list[str]:
    r = client.post("/v1/models/adder:predict",
                    json={"instances": [{"a": float(i), "b": i} for i in range(n)]})
    assert r.status_code == 200, r.text
    ids: list[str] = r.json()["prediction_ids"]
    return ids


def test_labels_attach_late_in_any_order_and_idempotently(client: TestClient,
                                                         project: Path) -> None:
    ids = _predict(client, 3)
    body: dict[str, Any] = {"labels": [{"prediction_id": ids[2], "label": 1},
                                       {"prediction_id": ids[0], "label": 0, "ts": 1.7e9}]}
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == 200, r.text
    assert r.json() | {"unknown_ids": []} == {"received": 2, "stored": 2, "duplicates": 0,
                                             "relabelled": 0, "unknown": 0, "unknown_ids": [],
                                             "unknown_not_kept": 0}
    assert _labels(project) == {ids[2]: "1", ids[0]: "0"}

    again = client.post("/v1/feedback", json=body)  # a retried request changes nothing
    assert again.json()["duplicates"] == 2 and again.json()["stored"] == 0

    fixed = client.post("/v1/feedback", json=[{"prediction_id": ids[0], "label": 1}])
    assert fixed.json()["relabelled"] == 1
    assert _labels(project)[ids[0]] == "1"


def test_unknown_ids_are_reported_and_kept(client: TestClient, project: Path) -> None:
    ids = _predict(client, 1)
    r = client.post("/v1/feedback", json={"labels": [
        {"prediction_id": ids[0], "label": 1}, {"prediction_id": "not-a-prediction", "label": 0}]})
    assert r.status_code == 200
    assert r.json()["unknown"] == 1 and r.json()["unknown_ids"] == ["not-a-prediction"]
    con = sqlite3.connect(project / ".keel" / "keel.db")
    try:
        kept = con.execute("SELECT prediction_id FROM unknown_labels").fetchall()
    finally:
        con.close()
    assert kept == [("not-a-prediction",)]


def test_an_invalid_label_writes_nothing_and_names_the_field(client: TestClient,
                                                            project: Path) -> None:
    ids = _predict(client, 1)
    r = client.post("/v1/feedback", json={"labels": [{"prediction_id": ids[0], "label": 1},
                                                     {"label": 0}]})
    assert r.status_code == 422, r.text
    paths = [d["path"] for d in r.json()["details"]]
    assert any(p.startswith("labels[1]") and "prediction_id" in p for p in paths), paths
    assert _labels(project) == {}


@pytest.mark.parametrize(("body", "status"), [
    ({"labels": "x"}, 422), ({"labels": []}, 422), (5, 422),
    ([{"prediction_id": "a", "label": 1}] * (MAX_LABELS + 1), 413),
])
def test_malformed_bodies_get_4xx(client: TestClient, body: Any, status: int) -> None:
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == status, r.text
    assert r.json()["details"]


def test_non_json_body_is_400(client: TestClient) -> None:
    r = client.post("/v1/feedback", content=b"{not json", headers={"content-type":
                                                                    "application/json"})
    assert r.status_code == 400


def test_unknown_labels_are_bounded_per_request_and_expire(project: Path) -> None:
    from datetime import UTC, datetime, timedelta

    resolved = load_spec(project / "keel.yaml")
    service = open_service(resolved)
    engine = make_engine(resolved.storage_url)
    store = LabelStore(engine)
    store.ensure_schema()
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close,
                     routers=[feedback_router(store, max_unknown=100, unknown_ttl_s=3600.0)])
    with TestClient(app) as client:
        ids = _predict(client, 2)
        body = {"labels": [{"prediction_id": f"ghost-{i}", "label": 1} for i in range(9_999)]
                + [{"prediction_id": ids[0], "label": 1}]}
        r = client.post("/v1/feedback", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["stored"] == 1 and got["unknown"] == 9_999
        assert got["unknown_not_kept"] == 9_899
        assert store.count()["unknown_labels"] == 100
        # the same ids again update the kept rows and add nothing
        again = client.post("/v1/feedback", json={"labels": body["labels"][:100]})
        assert again.json()["unknown_not_kept"] == 0
        assert store.count()["unknown_labels"] == 100
    # not seen again within the TTL: gone
    assert store.expire_unknown(3600.0, now=datetime.now(UTC) + timedelta(seconds=3500)) == 0
    assert store.expire_unknown(3600.0, now=datetime.now(UTC) + timedelta(hours=2)) == 100
    assert store.count()["unknown_labels"] == 0
    engine.dispose()


def test_keel_yaml_sets_the_unknown_label_bounds(tmp_path: Path) -> None:
    from keelwork.interfaces.http.server import build_server_app

    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES) + (
        "monitoring: {labels: {max_unknown_per_request: 5, unknown_ttl: 1s}}\n"))
    app = build_server_app(load_spec(tmp_path / "keel.yaml"), freeze_gc=False,
                           monitor_interval_s=0)
    with TestClient(app) as client:
        r = client.post("/v1/feedback", json=[{"prediction_id": f"g{i}", "label": 0}
                                              for i in range(50)])
        assert r.status_code == 200, r.text
        assert r.json()["unknown_not_kept"] == 45
    engine = make_engine(load_spec(tmp_path / "keel.yaml").storage_url)
    store = LabelStore(engine)
    import time

    time.sleep(1.1)
    assert store.expire_unknown(1.0) == 5
    engine.dispose()


def test_a_huge_value_is_not_echoed_whole(client: TestClient) -> None:
    """Issue 13 #11: a 500 KB prediction id came back in a 500 KB 422 body."""
    huge = "x" * 500_000
    r = client.post("/v1/feedback", json={"labels": [{"prediction_id": huge, "label": "a"}]})
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 5_000
    detail = r.json()["details"][0]
    assert detail["path"] == "labels[0].prediction_id"
    assert str(detail["got"]).endswith("...") and len(detail["got"]) <= 203


def _contract_client(project: Path, outputs: str) -> TestClient:
    (project / "keel.yaml").write_text(SPEC.format(fx=FIXTURES) + outputs)
    resolved = load_spec(project / "keel.yaml")
    service = open_service(resolved)
    store = LabelStore(make_engine(resolved.storage_url))
    store.ensure_schema()
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close,
                     routers=[feedback_router(store, outputs=resolved.spec.contract.outputs)])
    return TestClient(app, raise_server_exceptions=False)


def test_labels_must_be_one_of_the_output_categories(tmp_path: Path) -> None:
    """Issue 11 #8: {"label": "purple"} and {"label": 1} for categories [bad, good] were
    stored."""
    outputs = "  outputs:\n    - {name: label, type: category, categories: [bad, good]}\n"
    with _contract_client(tmp_path, outputs) as c:
        ids = _predict(c, 3)
        r = c.post("/v1/feedback", json={"labels": [
            {"prediction_id": ids[0], "label": "purple"},
            {"prediction_id": ids[1], "label": 1},
            {"prediction_id": ids[2], "label": "good"}]})
        assert r.status_code == 422, r.text
        details = r.json()["details"]
        assert [(d["path"], d["rule"], d["got"]) for d in details] == [
            ("labels[0].label", "category", "purple"), ("labels[1].label", "type", 1)]
        assert "'bad', 'good'" in details[0]["message"]
        assert "'bad', 'good'" in r.json()["error"]
        assert _labels(tmp_path) == {}  # nothing written
        ok = c.post("/v1/feedback", json={"labels": [{"prediction_id": ids[2], "label": "good"},
                                                     {"prediction_id": ids[0],
                                                      "label": {"label": "bad"}}]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["stored"] == 2


def test_a_regressor_label_must_be_a_number(tmp_path: Path) -> None:
    """Issue 12 #5: "abc" for a regressor was stored and later dropped from quality."""
    outputs = "  outputs:\n    - {name: value, type: float, min: 0, max: 10}\n"
    with _contract_client(tmp_path, outputs) as c:
        ids = _predict(c, 2)
        r = c.post("/v1/feedback", json=[{"prediction_id": ids[0], "label": "abc"}])
        assert r.status_code == 422, r.text
        assert r.json()["details"][0]["rule"] == "type"
        assert "must be a number" in r.json()["details"][0]["message"]
        # the prediction's range is not the truth's: 42 is a valid observed value
        r = c.post("/v1/feedback", json=[{"prediction_id": ids[1], "label": 42.5}])
        assert r.status_code == 200 and r.json()["stored"] == 1


@pytest.mark.parametrize("ts", [1e308, -1e20, "0001-01-01", "0001-01-01T00:00:00Z", -1])
def test_implausible_times_are_refused(client: TestClient, project: Path,
                                       ts: Any) -> None:
    """Issue 13 #14: ts 1e308, -1e20 and year 0001 were stored as given."""
    ids = _predict(client, 1)
    r = client.post("/v1/feedback", json=[{"prediction_id": ids[0], "label": 1, "ts": ts}])
    assert r.status_code == 422, r.text
    detail = r.json()["details"][0]
    assert (detail["path"], detail["rule"]) == ("labels[0].ts", "range")
    assert _labels(project) == {}


def test_messages_about_json_bodies_say_field(client: TestClient) -> None:
    """Issue 11 #8: feedback errors said 'column'."""
    r = client.post("/v1/feedback", json=[{"prediction_id": "", "label": None, "ts": "x"}])
    assert r.status_code == 422
    messages = [d["message"] for d in r.json()["details"]]
    assert len(messages) == 3
    assert all(" field " in m and "column" not in m for m in messages), messages
    assert "column" not in r.json()["error"]
    assert messages[0].startswith("The 'labels[0].prediction_id' field")


@pytest.mark.parametrize("raw", [
    b'[{"prediction_id": "p", "label": "a", "label": "b"}]',
    b'{"labels": [{"prediction_id": "p", "label": 1}], "labels": []}',
    b'[{"prediction_id": "p", "label": {"x": 1, "x": 2}}]',
    b'[{"prediction_id": "p", "label": "a", "lab\\u0065l": "b"}]',
])
def test_duplicate_keys_are_refused(client: TestClient, raw: bytes) -> None:
    """Issue 13 #14: duplicate JSON keys silently took the last value."""
    r = client.post("/v1/feedback", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["details"][0]["rule"] == "duplicate_key"
