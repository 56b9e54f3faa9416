"""keelwork.Client / AsyncClient against the real server app: answers typed, refusals raised as
the classes the server mapped to their status, with the field paths of the details."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from starlette.testclient import TestClient

import keelwork
from keelwork.adapters.stores.api_keys import ApiKeyStore
from keelwork.errors import (
    AuthError,
    ContractViolation,
    ModelNotFoundError,
    ModelRefError,
    RequestRefused,
    TransitionError,
)
from keelwork.interfaces.client_errors import error_for
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

SPEC = """\
service: {{name: client-test, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs:
    - {{name: a, type: float, min: 0}}
    - {{name: b, type: integer}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    return tmp_path


def _admin_key(project: Path) -> str:
    engine = create_engine(load_spec(project / "keel.yaml").storage_url)
    try:
        store = ApiKeyStore(engine)
        store.ensure_schema()
        return store.create(scopes=["admin"], name="admin", created_by="t").plaintext
    finally:
        engine.dispose()


@pytest.fixture
def server(project: Path) -> Iterator[TestClient]:
    app = build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False,
                           monitor_interval_s=0)
    with TestClient(app) as http:
        yield http


def _client(http: TestClient, api_key: str | None = None) -> keelwork.Client:
    return keelwork.Client(str(http.base_url), api_key=api_key, http_client=http)


def test_predict_v1_and_v2_answer_typed_predictions_and_feedback_attaches(
        server: TestClient) -> None:
    client = _client(server)
    v1 = client.predict("adder", [{"a": 1.5, "b": 2}, {"a": 0.0, "b": 1}])
    assert v1.predictions == [3.5, 1.0] and v1.model == "adder" and v1.version == 1
    assert len(v1.prediction_ids) == 2 and v1.answered_by
    v2 = client.predict("adder", [{"a": 2.0, "b": 3}], protocol="v2")
    assert v2.predictions == [5.0] and len(v2.prediction_ids) == 1
    tally = client.feedback({v1.prediction_ids[0]: 3.5, v2.prediction_ids[0]: 5.0})
    assert tally["stored"] == 2
    assert client.model("adder")["ready"] is True
    assert client.ready()["ready"] is True


def test_a_dataframe_is_sent_as_records_with_gaps_as_null(server: TestClient) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2]})
    assert _client(server).predict("adder", frame).predictions == [2.0, 4.0]


def test_refusals_raise_the_server_side_classes_with_their_field_paths(
        server: TestClient) -> None:
    client = _client(server)
    with pytest.raises(ContractViolation) as bad:
        client.predict("adder", [{"a": 1.0, "b": 1}, {"a": -1.0, "b": 1}])
    assert bad.value.details[0].path == "instances[1].a"
    assert bad.value.details[0].rule == "min" and bad.value.details[0].got == -1.0
    assert any("HTTP 422" in n for n in bad.value.__notes__)
    with pytest.raises(ContractViolation) as v2:
        client.predict("adder", [{"a": -1.0, "b": 1}], protocol="v2")
    assert v2.value.details[0].path.startswith("inputs[0].data[0]")
    with pytest.raises(ModelNotFoundError):
        client.predict("nope", [{"a": 1.0, "b": 1}])
    with pytest.raises(ModelRefError):
        client.predict("adder", [{"a": 1.0, "b": 1}], ref="a@b")
    with pytest.raises(RequestRefused) as refused:  # a 400: not a classifier
        client.predict("adder", [{"a": 1.0, "b": 1}], probabilities=True)
    assert refused.value.status == 400
    assert refused.value.details[0].path == "parameters.probabilities"
    with pytest.raises(ContractViolation):
        client.infer("adder", {"inputs": "nope"})
    with pytest.raises(AuthError):
        client.flags()  # admin routes always need a key


def test_admin_routes_flags_rollouts_keys(server: TestClient, project: Path) -> None:
    key = _admin_key(project)
    keelwork.Project(project).register("fakes:total", "adder", runtime="python",
                                       options={"path": str(FIXTURES)})
    client = _client(server, key)
    flag = client.put_flag({"name": "acme", "model": "adder",
                            "rules": [{"tenants": ["acme"], "serve": "1"}]})
    assert flag["name"] == "acme"
    assert [f["name"] for f in client.flags()["flags"]] == ["acme"]
    with pytest.raises(ContractViolation) as bad_flag:
        client.put_flag({"name": "x", "model": "adder", "rules": [{"serve": "9"}]})
    assert bad_flag.value.details
    client.delete_flag("acme")
    with pytest.raises(ModelNotFoundError):
        client.delete_flag("acme")
    started = client.start_rollout("adder", 2, strategy="canary")
    assert started.phase == "progressing" and started.rollout["challenger"] == 2
    assert client.rollout("adder").to_dict()["events"]
    with pytest.raises(TransitionError):
        client.start_rollout("adder", 2)
    assert client.rollout_action("adder", "abort").phase == "aborted"
    with pytest.raises(TransitionError):
        client.rollout_action("adder", "abort")
    assert "rollout" in client.rollout("adder")._repr_html_().lower()
    keys = client.api_keys()
    assert [k["name"] for k in keys] == ["admin"]
    with pytest.raises(AuthError):
        client.revoke_key("kw_nope")


def test_async_client_against_the_asgi_app(project: Path) -> None:
    app = build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False,
                           monitor_interval_s=0)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with keelwork.AsyncClient("http://keel", transport=transport) as client:
                answer = await client.predict("adder", [{"a": 1.0, "b": 2}])
                assert answer.predictions == [3.0]
                assert (await client.feedback([{"prediction_id": answer.prediction_ids[0],
                                                "label": 3.0}]))["stored"] == 1
                with pytest.raises(ContractViolation):
                    await client.predict("adder", [{"a": "x", "b": 2}])
                with pytest.raises(AuthError):
                    await client.api_keys()

    asyncio.run(run())


def test_error_for_inverts_the_status_mapping() -> None:
    from keelwork.errors import ModelLoadError, PredictionError, StoreError

    body = {"error": "busy", "details": [{"path": "", "rule": "overloaded", "got": None}]}
    overloaded = error_for(503, body, {"retry-after": "2"})
    assert type(overloaded).__name__ == "Overloaded"
    assert overloaded.retry_after == 2.0  # type: ignore[attr-defined]
    timeout = error_for(504, {"error": "slow", "details": [{"path": "model",
                                                              "rule": "model_timeout",
                                                              "got": "adder"}]})
    assert isinstance(timeout, TimeoutError)
    assert isinstance(error_for(500, {"error": "boom", "details": []}), PredictionError)
    assert isinstance(error_for(422, {"error": "no", "details": [
        {"path": "to", "rule": "loads", "got": 2}]}), ModelLoadError)
    assert isinstance(error_for(503, {"error": "db", "details": [
        {"path": "header:authorization", "rule": "key_store", "got": None}]},
        {"retry-after": "1"}), StoreError)
    odd = error_for(413, "not json")
    assert isinstance(odd, RequestRefused) and odd.status == 413


def test_the_client_loads_no_server_or_data_library() -> None:
    import subprocess
    import sys

    code = ("import sys, keelwork; keelwork.Client, keelwork.AsyncClient, keelwork.Project; "
            "heavy = ('numpy', 'pandas', 'pyarrow', 'sqlalchemy', 'fastapi', 'sklearn', "
            "'torch'); print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"keelwork.Client / Project loaded {out}"


def test_the_api_reference_names_only_objects_that_exist() -> None:
    import importlib
    import re

    page = Path(__file__).resolve().parents[3] / "docs" / "reference" / "python.md"
    names = re.findall(r"^::: ([\w.]+)$", page.read_text(), re.M)
    assert "keelwork.Project" in names and "keelwork.Client" in names
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ImportError:
            assert hasattr(importlib.import_module(module), attr), name


def test_a_guard_s_refusal_reads_back_as_guard_errors() -> None:
    from keelwork.errors import GuardRefused, GuardUnavailable
    from keelwork.interfaces.client_errors import error_for

    body = {"error": "refused by the prompt_injection guard",
            "details": [{"path": "instances[0].prompt", "rule": "prompt_injection",
                         "got": None}]}
    assert isinstance(error_for(403, body), GuardRefused)
    failed = {"error": "the guard timed out",
              "details": [{"path": "guards.prompt_injection", "rule": "guard_failed",
                           "got": None}]}
    assert isinstance(error_for(503, failed), GuardUnavailable)
