"""The HTTP gateway end to end (in-process): protocols, guards, fallback, log, metrics."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from keelwork.interfaces.http.app import create_app
from keelwork.service.assembly import open_service
from keelwork.service.registration import register_model
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"

SPEC = """\
service: {{name: test-service, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
    timeout_ms: 2000
    batching: {{max_batch_size: 8, max_wait_ms: 2}}
  - name: broken
    runtime: python
    artifact: "fakes:fails"
    options: {{path: "{fx}"}}
    fallback: adder
  - name: lonely
    runtime: python
    artifact: "fakes:fails"
    options: {{path: "{fx}"}}
  - name: sleepy
    runtime: python
    artifact: "fakes:slow"
    options: {{path: "{fx}"}}
    timeout_ms: 100
    batching: {{enabled: false}}
contract:
  inputs:
    - {{name: a, type: float, min: 0, max: 100}}
    - {{name: b, type: integer}}
    - {{name: c, type: category, categories: [x, y], required: false, nullable: true}}
guards: {{max_body_bytes: 20000, max_concurrency: 64}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[TestClient]:
    service = open_service(load_spec(project / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _rows(project: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(project / ".keel" / "keel.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_v1_predict_records_and_lists(client: TestClient, project: Path) -> None:
    r = client.post("/v1/models/adder:predict",
                    json={"instances": [{"a": 1.5, "b": 2}, {"a": 3, "b": 4, "c": "x"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"] == [3.5, 7.0]
    assert body["model_version"] == 1
    assert len(body["prediction_ids"]) == 2
    assert r.headers["x-prediction-ids"] == ",".join(body["prediction_ids"])
    r = client.post("/v1/models/adder:predict", json={"instances": [[1.0, 2, None]]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [3.0]
    # sync durability: the records are committed before the answer
    ids = body["prediction_ids"]
    got = _rows(project, "select id, model, version, status, latency_ms, model_latency_ms "
                         "from predictions")
    assert {row[0] for row in got} >= set(ids)
    mine = [row for row in got if row[0] in ids]
    assert all(row[1:4] == ("adder", 1, "ok") for row in mine)
    assert all(0 < row[5] <= row[4] for row in mine)  # model stage within the request


def test_v1_alias_and_version_addressing(client: TestClient) -> None:
    for path in ("/v1/models/adder@champion:predict", "/v1/models/adder@1:predict"):
        r = client.post(path, json={"instances": [{"a": 1, "b": 1}]})
        assert r.status_code == 200, r.text
    r = client.post("/v1/models/adder:predict", json={"instances": [{"a": 1, "b": 1}]},
                    headers={"x-keel-model-ref": "1"})
    assert r.status_code == 200
    r = client.post("/v1/models/adder@nope:predict", json={"instances": [{"a": 1, "b": 1}]})
    assert r.status_code == 404
    assert "no alias 'nope'" in r.json()["error"]
    r = client.post("/v1/models/ghost:predict", json={"instances": [{"a": 1, "b": 1}]})
    assert r.status_code == 404
    assert r.json()["details"][0]["rule"] == "unknown_model"


def test_contract_violations_name_every_field(client: TestClient, project: Path) -> None:
    r = client.post("/v1/models/adder:predict", json={"instances": [
        {"a": -1, "b": 2},
        {"a": 5, "b": "two", "c": "z"},
        {"b": 1, "zzz": 3},
    ]})
    assert r.status_code == 422, r.text
    details = r.json()["details"]
    got = {(d["path"], d["rule"]) for d in details}
    assert got == {("instances[0].a", "min"), ("instances[1].b", "type"),
                   ("instances[1].c", "category"), ("instances[2].a", "required"),
                   ("instances[2].zzz", "extra_field")}
    assert {"path", "rule", "got"} <= set(details[0])
    # refused input is kept where the user can find it
    rejected = _rows(project, "select status, guard from predictions where status='rejected'")
    assert rejected and set(rejected) == {("rejected", "contract")}


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b'{"instances": [', {"content-type": "application/json"}, 400),
    (b"", {"content-type": "application/json"}, 400),
    (b'{"instances": 3}', {"content-type": "application/json"}, 422),
    (b'{"inst": []}', {"content-type": "application/json"}, 422),
    (b"[1, 2]", {"content-type": "application/json"}, 422),
    (b'{"instances": []}', {"content-type": "application/json"}, 422),
    (b"a=1", {"content-type": "application/x-www-form-urlencoded"}, 415),
    (b'{"instances": [{"a": 1e999, "b": 1}]}', {"content-type": "application/json"}, 400),
    (b'{"instances": [{"a": 1, "b": 99999999999999999999999}]}',
     {"content-type": "application/json"}, 422),
])
def test_bad_requests_are_4xx_with_json_errors(client: TestClient, body: bytes,
                                               headers: dict[str, str], status: int) -> None:
    r = client.post("/v1/models/adder:predict", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "details"}


def test_body_size_limit(client: TestClient) -> None:
    big = {"instances": [{"a": 1, "b": 1}] * 3000}
    r = client.post("/v1/models/adder:predict", json=big)
    assert r.status_code == 413
    assert "max_body_bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(3000):
            yield b'{"a": 1, "b": 1},'
        yield b'{"a": 1, "b": 1}]}'

    r = client.post("/v1/models/adder:predict", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_fallback_answers_when_the_primary_fails(client: TestClient) -> None:
    r = client.post("/v1/models/broken:predict", json={"instances": [{"a": 2, "b": 3}]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [5.0]
    assert r.json()["answered_by"] == "adder:1"
    assert r.headers["x-answered-by"] == "adder:1"
    r = client.post("/v1/models/lonely:predict", json={"instances": [{"a": 2, "b": 3}]})
    assert r.status_code == 500
    assert "lonely:1" in r.json()["error"] and "always fails" in r.json()["error"]
    # the server is still fine
    assert client.get("/v2/health/ready").status_code == 200


def test_timeout_is_504_naming_the_model(client: TestClient) -> None:
    r = client.post("/v1/models/sleepy:predict", json={"instances": [{"a": 2, "b": 3}]})
    assert r.status_code == 504
    assert "sleepy:1" in r.json()["error"] and "100 ms" in r.json()["error"]


def test_v2_infer_metadata_and_health(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/adder/ready").json()["ready"] is True
    assert client.get("/v2/models/ghost/ready").status_code == 404
    meta = client.get("/v2/models/adder").json()
    assert meta["name"] == "adder" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == ["a", "b", "c"]
    assert client.get("/v2/models/adder/versions/1").status_code == 200
    body = {"id": "req-1", "inputs": [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "b", "shape": [2], "datatype": "INT64", "data": [10, 20]},
    ]}
    r = client.post("/v2/models/adder/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "req-1" and out["model_version"] == "1"
    assert out["outputs"][0]["data"] == [11.0, 22.0]
    assert out["outputs"][0]["shape"] == [2]
    r = client.post("/v2/models/adder/versions/1/infer", json=body)
    assert r.status_code == 200
    bad = {"inputs": [{"name": "a", "shape": [3], "datatype": "FP64", "data": [1.0]}]}
    r = client.post("/v2/models/adder/infer", json=bad)
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "inputs[0].data"


def test_metrics_expose_conventional_names(client: TestClient) -> None:
    client.post("/v1/models/adder:predict", json={"instances": [{"a": 1, "b": 1}]})
    client.post("/v1/models/adder:predict", json={"instances": [{"a": -1, "b": 1}]})
    text = client.get("/metrics").text
    for name in ("keelwork_requests_total", "keelwork_request_duration_seconds_bucket",
                 "keelwork_model_duration_seconds_bucket", "keelwork_batch_size_bucket",
                 "keelwork_contract_violations_total", "keelwork_prediction_log_queue_depth",
                 "keelwork_prediction_log_spool_records", "keelwork_fallback_uses_total"):
        assert name in text, name
    assert 'keelwork_contract_violations_total{field="a",model="adder",rule="min"} 1.0' in text


def test_concurrent_requests_are_batched(client: TestClient) -> None:
    from fakes import CALLS  # type: ignore[import-not-found]  # loaded by the runtime

    CALLS.clear()
    results: list[int] = []

    def one(i: int) -> None:
        r = client.post("/v1/models/adder:predict", json={"instances": [{"a": i, "b": 0}]})
        results.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 32
    assert sum(CALLS) == 32
    assert max(CALLS) <= 8  # never more than max_batch_size


def test_openapi_docs(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "/v1/models/{name}:predict" in doc["paths"]
    body = doc["paths"]["/v1/models/{name}:predict"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["properties"]["instances"]["items"]["required"] == ["a", "b"]
    assert client.get("/docs").status_code == 200
    assert doc["info"]["contact"] == {"name": "t@example.com"}  # service.owners
    json.dumps(doc)


def test_the_output_contract_and_its_descriptions_are_in_the_api_docs(tmp_path: Path) -> None:
    """``contract.outputs[].description`` is shown where clients read the API: the predict
    operation's text lists each output with its description."""
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES).replace(
        "guards:", "  outputs:\n    - {name: total, type: float, description: 'a plus b, in "
        "euros'}\n    - {name: note, type: string, required: false}\nguards:", 1))
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    with TestClient(create_app(service.gateway, on_startup=service.start,
                               on_shutdown=service.close)) as c:
        doc = c.get("/openapi.json").json()
    text = doc["paths"]["/v1/models/{name}:predict"]["post"]["description"]
    assert "- `total` (float): a plus b, in euros" in text
    assert "- `note` (string, optional)" in text


def test_saturated_server_answers_503_with_retry_after(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(f"""\
service: {{name: tight, owners: [t@example.com]}}
models:
  - name: pauser
    runtime: python
    artifact: "fakes:pause"
    options: {{path: "{FIXTURES}"}}
    batching: {{enabled: false}}
guards: {{max_concurrency: 2}}
""")
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    responses: list[Any] = []
    with TestClient(app) as c:
        def one() -> None:
            responses.append(c.post("/v1/models/pauser:predict", json={"instances": [1]}))

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) >= 2 and codes.count(503) >= 1, codes
        busy = next(r for r in responses if r.status_code == 503)
        assert busy.headers["retry-after"] == "1"
        assert "concurrency limit (2" in busy.json()["error"]
        # once the burst is over, the server answers again
        assert c.post("/v1/models/pauser:predict", json={"instances": [1]}).status_code == 200


def test_opt_in_tracing_makes_server_spans_with_the_prediction(tmp_path: Path) -> None:
    from opentelemetry import trace

    from otel_spans import span_exporter

    exporter = span_exporter()  # the process has one tracer provider: other tests' too
    (tmp_path / "keel.yaml").write_text(
        SPEC.format(fx=FIXTURES) + "server: {tracing: true}\n")
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app) as c:
        r = c.post("/v1/models/adder:predict", json={"instances": [{"a": 1, "b": 2}]})
        assert r.status_code == 200
        c.get("/metrics")
    spans = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert len(spans) == 1, [s.name for s in spans]  # /metrics is not traced
    attrs = dict(spans[0].attributes or {})
    assert attrs["keelwork.model"] == "adder"
    assert attrs["keelwork.model_version"] == 1
    assert list(attrs["keelwork.prediction_ids"]) == r.json()["prediction_ids"]


def test_relative_python_path_is_relative_to_keel_yaml(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "relmod_k7.py").write_text(
        "def double(xs):\n    return [2 * x for x in xs]\n")
    (tmp_path / "keel.yaml").write_text("""\
service: {name: rel, owners: [t@example.com]}
models:
  - {name: dbl, runtime: python, artifact: "relmod_k7:double", options: {path: models}}
""")
    monkeypatch.chdir("/")  # the current directory must not matter
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app) as c:
        r = c.post("/v1/models/dbl:predict", json={"instances": [1, 2.5]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [2, 5.0]


def test_features_are_looked_up_and_transformed_before_the_model(tmp_path: Path) -> None:
    """The same transforms `keel features build` applies run on the request path."""
    from fixtures import feature_transforms as ft
    from keelwork.adapters.data.feature_modules import read_history
    from keelwork.adapters.stores.features import open_feature_store

    _rows, history = ft.reviews()
    import pyarrow.parquet as pq

    pq.write_table(history, tmp_path / "product_stats.parquet")
    (tmp_path / "keel.yaml").write_text(
        "service: {name: feat, owners: [t@example.com]}\n"
        f"models: [{{name: echo, runtime: python, artifact: 'fakes:echo', "
        f"options: {{path: '{FIXTURES}'}}}}]\n"
        + ft.SPEC_FEATURES.format(module=ft.THIS_FILE, ttl="3650d"))
    resolved = load_spec(tmp_path / "keel.yaml")
    store = open_feature_store(resolved.storage_url)
    entity = resolved.spec.features.entities[0]
    table, source = read_history(resolved, entity)
    store.materialize(entity, table, source=source)
    store.close()
    product = history.column("product")[0].as_py()
    service = open_service(resolved)
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app) as c:
        r = c.post("/v1/models/echo:predict", json={"instances": [
            {"product": product, "review": "Great!! really"},
            {"product": "no-such-product", "review": "meh"}]})
    assert r.status_code == 200, r.text
    known, unknown = r.json()["predictions"]
    assert known["review_len"] == len("Great!! really") and known["n_bang"] == 2
    assert known["n_reviews"] is not None and known["log_n_reviews"] is not None
    assert unknown["n_reviews"] is None and unknown["review_len"] == 3


_ONE = {"instances": [{"a": 1, "b": 1}]}
_V2_ONE = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
                      {"name": "b", "shape": [1], "datatype": "INT64", "data": [1]}]}


@pytest.mark.parametrize(("path", "headers", "shown"), [
    ("/v1/models/adder:predict", {"x-keel-model-ref": "adder@champion@x"}, "adder@champion@x"),
    ("/v1/models/adder:predict", {"x-keel-model-ref": "credit@champion"}, "credit@champion"),
    ("/v1/models/adder:predict", {"x-keel-model-ref": "0"}, "'0'"),
    ("/v1/models/adder@bad%20alias:predict", {}, "adder@bad alias"),
    ("/v1/models/adder@..:predict", {}, "adder@.."),
    ("/v1/models/adder@-1:predict", {}, "adder@-1"),
    ("/v1/models/adder@0:predict", {}, "adder@0"),
    ("/v1/models/adder@%00:predict", {}, "adder@\\x00"),
    ("/v1/models/adder@%20:predict", {}, "adder@ "),
    ("/v1/models/adder@a@b:predict", {}, "adder@a@b"),
    ("/v1/models/adder@99999999999999999999999:predict", {}, "99999999999999999999999"),
    ("/v2/models/adder/versions/1%20/infer", {}, "'1 '"),
    ("/v2/models/adder/versions/99999999999999999999999/infer", {}, "99999999999999999999999"),
    ("/v2/models/adder@a@b/infer", {}, "adder@a@b"),
])
def test_malformed_model_references_are_400_naming_them(client: TestClient, path: str,
                                                        headers: dict[str, str],
                                                        shown: str) -> None:
    body = _V2_ONE if path.startswith("/v2") else _ONE
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 400, r.text
    out = r.json()
    assert shown in out["error"]
    assert out["details"] and out["details"][0]["rule"] == "model_ref"
    assert "'adder@champion'" in out["error"]  # the accepted forms, for this model


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/models/adder:predict", {"x-keel-model-ref": "adder@champion"}),
    ("/v1/models/adder:predict", {"x-keel-model-ref": "adder:1"}),
    ("/v1/models/adder:predict", {"x-keel-model-ref": "champion"}),
    ("/v1/models/adder:predict", {"x-keel-model-ref": "1"}),
    ("/v1/models/adder@1:predict", {}),
    ("/v1/models/adder:1:predict", {}),
    ("/v2/models/adder/versions/champion/infer", {}),
    ("/v2/models/adder:1/infer", {}),
])
def test_the_forms_error_messages_offer_work(client: TestClient, path: str,
                                             headers: dict[str, str]) -> None:
    body = _V2_ONE if path.startswith("/v2") else _ONE
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text


def test_get_on_predict_is_405_and_router_errors_have_the_error_shape(
        client: TestClient) -> None:
    r = client.get("/v1/models/adder:predict")
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "POST"
    assert r.json()["details"][0]["rule"] == "method_allowed"
    r = client.get("/v2/models/adder/infer")
    assert r.status_code == 405
    assert set(r.json()) == {"error", "details"} and r.json()["details"]
    r = client.get("/no/such/route")
    assert r.status_code == 404
    assert set(r.json()) == {"error", "details"}
    assert r.json()["details"][0] == {"path": "path", "rule": "route", "got": "/no/such/route"}


def test_v1_accepts_inputs_rows_and_columns(client: TestClient) -> None:
    r = client.post("/v1/models/adder:predict", json={"inputs": [{"a": 1, "b": 2}]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [3.0]
    r = client.post("/v1/models/adder:predict", json={"inputs": {"a": [1, 2], "b": [10, 20]}})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [11.0, 22.0]
    r = client.post("/v1/models/adder:predict", json={"inputs": {"a": [1, 2], "b": [10]}})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "inputs.b"
    r = client.post("/v1/models/adder:predict", json={**_ONE, "inputs": [{"a": 1, "b": 1}]})
    assert r.status_code == 422 and r.json()["details"][0]["rule"] == "exclusive"


def test_load_failures_show_no_absolute_server_path(tmp_path: Path) -> None:
    """Issue 13 #11: paths in error bodies are relative to the project."""
    from fixtures.models import sklearn_iris

    model = sklearn_iris(tmp_path)
    (tmp_path / "keel.yaml").write_text(
        "service: {name: s, owners: [t@example.com]}\n"
        "models:\n  - {name: iris, runtime: sklearn, artifact: iris.skops, "
        "options: {feature_names: [sepal_length, sepal_width, petal_length, petal_width]}}\n")
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    (tmp_path / "v2").mkdir()
    second = register_model(service.registry, "iris", sklearn_iris(tmp_path / "v2").artifact,
                                       "sklearn", options=model.options)
    blob = service.registry.artifact_path(second)
    assert blob is not None
    blob.chmod(0o644)
    blob.write_bytes(b"not a model")  # the stored version no longer loads
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/models/iris@2:predict", json={"instances": [model.sample[0]]})
    assert r.status_code == 500, r.text
    assert str(tmp_path) not in r.text and str(tmp_path.resolve()) not in r.text
    assert "'.keel/artifacts/sha256/" in r.json()["error"]  # relative, still useful
    assert r.json()["details"][0]["path"] == "model"


@pytest.mark.parametrize(("text", "expected"), [
    ("read '/srv/app/.keel/x.bin' failed", "read '.keel/x.bin' failed"),
    ("in /srv/app", "in ."),
    ("module /usr/lib/python3/site.py broke", "module .../site.py broke"),
    ("see http://example.com/a/b/c", "see http://example.com/a/b/c"),
    ("ratio 3/4 and a/b/c", "ratio 3/4 and a/b/c"),
])
def test_relative_paths(text: str, expected: str) -> None:
    from keelwork.interfaces.http.errors import relative_paths

    assert relative_paths(text, Path("/srv/app")) == expected


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "keelwork.access"]


def test_every_request_gets_one_access_log_line(client: TestClient,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Issue 11 #7: 422 and 500 (and 504, 404, 405, 413) printed no access-log line."""
    caplog.set_level("INFO", logger="keelwork.access")
    calls = [
        ("POST", "/v1/models/adder:predict", _ONE, 200),
        ("POST", "/v1/models/adder:predict", {"instances": [{"a": -1, "b": 1}]}, 422),
        ("POST", "/v1/models/lonely:predict", _ONE, 500),
        ("POST", "/v1/models/sleepy:predict", _ONE, 504),
        ("POST", "/v1/models/ghost:predict", _ONE, 404),
        ("GET", "/v1/models/adder:predict", None, 405),
        ("POST", "/v1/models/adder:predict", {"instances": [{"a": 1, "b": 1}] * 3000}, 413),
        ("GET", "/v2/health/live", None, 200),
    ]
    for method, path, body, status in calls:
        caplog.clear()
        r = client.request(method, path, json=body)
        assert r.status_code == status, r.text
        lines = _access_lines(caplog)
        assert len(lines) == 1, (path, status, lines)
        line = lines[0]
        assert (line["method"], line["path"], line["status"]) == (method, path, status)
        assert line["ms"] >= 0
        if status >= 400:
            assert line["error"] == r.json()["error"][:300]
        if path.endswith(":predict") and status == 200:
            assert line["model"] == "adder" and line["version"] == 1
            assert line["prediction_ids"] == r.json()["prediction_ids"]


def test_failed_requests_are_in_the_prediction_log_with_their_error(
        client: TestClient, project: Path) -> None:
    """Issue 11 #7: a 504 (and a 500) left no trace in the prediction log."""
    assert client.post("/v1/models/sleepy:predict", json=_ONE).status_code == 504
    assert client.post("/v1/models/lonely:predict", json=_ONE).status_code == 500
    rows = _rows(project, "select p.model, p.status, p.guard, q.request_meta from predictions p "
                          "join prediction_payloads q on q.id = p.id where p.status = 'error' "
                          "order by p.ts")
    got = {(model, status, guard): json.loads(meta) for model, status, guard, meta in rows}
    assert set(got) == {("sleepy", "error", "timeout"), ("lonely", "error", None)}
    assert "did not answer within 100 ms" in got[("sleepy", "error", "timeout")]["error"]
    assert got[("sleepy", "error", "timeout")]["error_type"] == "ModelTimeout"
    assert "always fails" in got[("lonely", "error", None)]["error"]


def test_duplicate_keys_in_a_predict_body_are_400(client: TestClient) -> None:
    """Issue 13 #14: {"a": 1, "a": 99} silently predicted with 99."""
    raw = b'{"instances": [{"a": 1, "a": 99, "b": 1}]}'
    r = client.post("/v1/models/adder:predict", content=raw,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["details"][0] == {"path": "a", "rule": "duplicate_key", "got": "a"}


@pytest.fixture
def iris(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    """A served sklearn classifier (iris: classes 0, 1, 2) with a second version loaded."""
    from fixtures.models import IRIS_FEATURES, sklearn_iris

    model = sklearn_iris(tmp_path)
    fields = "".join(f"    - {{name: {f}, type: float}}\n" for f in IRIS_FEATURES)
    (tmp_path / "keel.yaml").write_text(
        "service: {name: s, owners: [t@example.com]}\n"
        "models:\n  - {name: iris, runtime: sklearn, artifact: iris.skops, "
        f"options: {{feature_names: [{', '.join(IRIS_FEATURES)}]}}}}\n"
        f"contract:\n  inputs:\n{fields}")
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    (tmp_path / "v2").mkdir()
    register_model(service.registry, "iris", sklearn_iris(tmp_path / "v2").artifact, "sklearn",
                              options=model.options)
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, model


def _iris_v2(model: Any, n: int = 2) -> dict[str, Any]:
    rows = model.sample[:n]
    return {"inputs": [{"name": f, "shape": [n], "datatype": "FP64",
                        "data": [float(r[f]) for r in rows]} for f in model.feature_names]}


def test_v2_metadata_matches_what_infer_returns(iris: tuple[TestClient, Any]) -> None:
    """Issue 11 #9: metadata listed predict and predict_proba, infer returned 'label' and
    ignored the requested outputs; versions listed only the champion."""
    c, model = iris
    assert c.post("/v2/models/iris/versions/2/infer", json=_iris_v2(model)).status_code == 200
    meta = c.get("/v2/models/iris").json()
    assert meta["versions"] == ["1", "2"]  # every served version
    names = [o["name"] for o in meta["outputs"]]
    assert names == ["predict", "predict_proba"]
    assert meta["outputs"][1]["shape"] == [-1, 3]
    r = c.post("/v2/models/iris/infer", json=_iris_v2(model))
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["predict"]
    asked = {**_iris_v2(model), "outputs": [{"name": "predict_proba"}, {"name": "predict"}]}
    r = c.post("/v2/models/iris/infer", json=asked)
    assert r.status_code == 200, r.text
    proba, labels = r.json()["outputs"]
    assert [proba["name"], labels["name"]] == names[::-1]  # in the order asked
    assert proba["shape"] == [2, 3] and proba["datatype"] == "FP64"
    assert proba["parameters"]["classes"] == [0, 1, 2]
    rows = [proba["data"][i * 3:(i + 1) * 3] for i in range(2)]
    assert all(abs(sum(row) - 1) < 1e-6 for row in rows)
    assert [row.index(max(row)) for row in rows] == labels["data"]


def test_unknown_requested_outputs_are_400_naming_the_outputs(
        iris: tuple[TestClient, Any], client: TestClient) -> None:
    """Issue 12 #6: an unknown requested output answered 200."""
    c, model = iris
    r = c.post("/v2/models/iris/infer", json={**_iris_v2(model), "outputs": [{"name": "nope"}]})
    assert r.status_code == 400, r.text
    assert r.json()["details"][0]["path"] == "outputs[0].name"
    assert "'predict', 'predict_proba'" in r.json()["error"]
    body = {**_V2_ONE, "outputs": [{"name": "predict_proba"}]}  # adder is no classifier
    r = client.post("/v2/models/adder/infer", json=body)
    assert r.status_code == 400 and "'predict'" in r.json()["error"]


def test_v1_probabilities_parameter(iris: tuple[TestClient, Any], client: TestClient) -> None:
    """Issues 11 #9 / 12 #6: V1 probability parameters were ignored without a word."""
    c, model = iris
    body = {"instances": list(model.sample[:2]), "parameters": {"probabilities": True}}
    r = c.post("/v1/models/iris:predict", json=body)
    assert r.status_code == 200, r.text
    probs = r.json()["probabilities"]
    assert [sorted(p) for p in probs] == [["0", "1", "2"]] * 2
    assert [max(p, key=p.get) for p in probs] == [str(x) for x in r.json()["predictions"]]
    r = c.post("/v1/models/iris:predict", json={"instances": list(model.sample[:1])})
    assert "probabilities" not in r.json()
    r = c.post("/v1/models/iris:predict", json={**body, "parameters": {"proba": True}})
    assert r.status_code == 400 and r.json()["details"][0]["path"] == "parameters.proba"
    assert "'probabilities'" in r.json()["error"]
    r = client.post("/v1/models/adder:predict", json={**_ONE, "parameters": {
        "probabilities": True}})
    assert r.status_code == 400 and "no class probabilities" in r.json()["error"]


def test_v2_errors_use_v2_paths(client: TestClient) -> None:
    """Issue 12 #6: V2 contract errors named V1's instances[0]."""
    body = {"inputs": [{"name": "b", "shape": [2], "datatype": "INT64", "data": [1, 2]},
                       {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, -5.0]}]}
    r = client.post("/v2/models/adder/infer", json=body)
    assert r.status_code == 422, r.text
    details = r.json()["details"]
    assert [(d["path"], d["rule"]) for d in details] == [("inputs[1].data[1]", "min")]
    assert "instances" not in r.text
    r = client.post("/v2/models/adder/infer", json={"inputs": [
        {"name": "b", "shape": [1], "datatype": "INT64", "data": [1]}]})
    assert r.status_code == 422
    assert [d["path"] for d in r.json()["details"]] == ["inputs[name=a]"]
    assert "instances" not in r.text


def test_error_details_are_never_empty(client: TestClient) -> None:
    """Issue 12 #6: `details` was empty on timeouts, model errors and missing aliases."""
    for path, status, got in (("/v1/models/sleepy:predict", 504, "sleepy:1"),
                              ("/v1/models/lonely:predict", 500, None),
                              ("/v1/models/adder@nope:predict", 404, None)):
        r = client.post(path, json=_ONE)
        assert r.status_code == status, r.text
        details = r.json()["details"]
        assert details and details[0]["path"] == "model" and details[0]["rule"], details
        if got is not None:
            assert details[0]["got"] == got


def test_long_client_headers_are_stored_clipped(client: TestClient, project: Path) -> None:
    """A client's headers end up in every record of its request: 10 KB of tenant, subject,
    request id and user agent on 50 instances are kept as 256 characters each."""
    long = "t" * 10_000
    r = client.post("/v1/models/adder:predict", json={"instances": [[1.0, 2, None]] * 50},
                    headers={"x-tenant-id": long, "x-subject-id": long, "x-request-id": long,
                             "user-agent": long})
    assert r.status_code == 200, r.text
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.prediction_store import PredictionReader

    engine = make_engine(load_spec(project / "keel.yaml").storage_url)
    try:
        records = list(PredictionReader(engine).iter_records())
    finally:
        engine.dispose()
    assert len(records) == 50
    for record in records:
        assert record.tenant == long[:256] and record.subject_id == long[:256]
        kept = record.request_meta
        assert kept["x-request-id"] == long[:256] and kept["user-agent"] == long[:256]
