"""The Open Inference Protocol's typed tensors, on the default engine: a tensor's datatype
checked against its data, the runtime's refusals named by tensor path, metadata typed as infer
answers, and one output tensor per contract output (audit of protocol kinds: B4, B7, B8, B9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from keelwork.errors import ContractViolation, ErrorDetail, InvalidInputError
from keelwork.interfaces.http.app import create_app
from keelwork.interfaces.http.errors import HTTPProblem
from keelwork.interfaces.http.protocols import parse_v2_request, v2_answer
from keelwork.service.assembly import open_service
from keelwork.spec import load_spec

MODULE = '''\
from keelwork.errors import ErrorDetail, InvalidInputError


def pair(instances):
    return [[r["a"] + r["b"], r["a"] * r["b"]] for r in instances]


def text(instances):
    for i, x in enumerate(instances):
        if not isinstance(x, str):
            raise InvalidInputError(f"Instance {i} must be one string.",
                                    [ErrorDetail(f"instances[{i}]", "type", "list")])
    return [len(x) for x in instances]
'''


def _serve(tmp_path: Path, yaml: str) -> Iterator[TestClient]:
    (tmp_path / "kinds_mod.py").write_text(MODULE)
    (tmp_path / "keel.yaml").write_text(yaml)
    service = open_service(load_spec(tmp_path / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def pairs(tmp_path: Path) -> Iterator[TestClient]:
    """A model answering two contract outputs as a list per instance."""
    yield from _serve(tmp_path, (
        "service: {name: s, owners: [t@example.com]}\nmodels:\n"
        f"  - {{name: multi, runtime: python, artifact: 'kinds_mod:pair', "
        f"options: {{path: '{tmp_path}'}}}}\n"
        "contract:\n  inputs:\n    - {name: a, type: float}\n    - {name: b, type: float}\n"
        "  outputs:\n    - {name: sum, type: float}\n    - {name: product, type: float}\n"))


@pytest.fixture
def texts(tmp_path: Path) -> Iterator[TestClient]:
    """A model without a contract whose runtime refuses a non-string instance."""
    yield from _serve(tmp_path, (
        "service: {name: s, owners: [t@example.com]}\nmodels:\n"
        f"  - {{name: text, runtime: python, artifact: 'kinds_mod:text', "
        f"options: {{path: '{tmp_path}'}}}}\n"))


def _tensor(dtype: str, data: list[Any], name: str = "x") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": [len(data)], "datatype": dtype, "data": data}]}


@pytest.mark.parametrize(("dtype", "data", "bad", "rule"), [
    ("INT64", [1, 1.5], 1, "datatype"),
    ("INT64", [True], 0, "datatype"),
    ("INT64", [2**63], 0, "range"),
    ("INT8", [127, -129], 1, "range"),
    ("UINT8", [256], 0, "range"),
    ("UINT64", [-1], 0, "range"),
    ("FP32", [1e39, 1.0], 0, "range"),
    ("FP16", [1.0, 70000.0], 1, "range"),
    ("FP64", [1.0, "2"], 1, "datatype"),
    ("FP32", [False], 0, "datatype"),
    ("BOOL", [True, 1], 1, "datatype"),
    ("BYTES", ["a", 3], 1, "datatype"),
])
def test_a_tensor_s_data_must_fit_its_datatype(dtype: str, data: list[Any], bad: int,
                                              rule: str) -> None:
    with pytest.raises(HTTPProblem) as caught:
        parse_v2_request(_tensor(dtype, data), [])
    assert caught.value.status == 422
    (detail,) = caught.value.details
    assert (detail.path, detail.rule) == (f"inputs[0].data[{bad}]", rule)
    assert dtype in caught.value.message and f"inputs[0].data[{bad}]" in caught.value.message


@pytest.mark.parametrize(("dtype", "fits", "past"), [
    ("INT64", [-2**63, 2**63 - 1, None], [-2**63 - 1]), ("UINT64", [2**64 - 1, 0], [-1]),
    ("INT8", [-128, 127], [128]), ("FP32", [1, 3.4e38, -3.4e38], [-3.5e38]),
    ("FP16", [65504.0], [65520.0]), ("FP64", [1.7e308, 2, None], [2**1024]),
    ("BOOL", [True, False, None], [0]), ("BYTES", ["a", "", None], [1.0]),
])
def test_a_datatype_s_bounds_are_its_own(dtype: str, fits: list[Any], past: list[Any]) -> None:
    """The values at a datatype's bounds pass (a null too: the contract judges it); the
    first past them does not."""
    assert parse_v2_request(_tensor(dtype, fits), []).instances == fits
    with pytest.raises(HTTPProblem) as caught:
        parse_v2_request(_tensor(dtype, [*fits, *past]), [])
    assert caught.value.details[0].path == f"inputs[0].data[{len(fits)}]"


def test_the_runtime_s_refusal_is_named_by_tensor_path(texts: TestClient) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "BYTES",
                        "data": ["great coffee", "B01"]}]}
    r = texts.post("/v2/models/text/infer", json=body)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["details"]] == ["inputs[0].data[0]"]
    assert "instances" not in r.text
    r = texts.post("/v2/models/text/infer", json=_tensor("INT64", [1, 1.5]))
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "inputs[0].data[1]"


def test_v2_error_renames_the_runtime_s_paths() -> None:
    from keelwork.interfaces.http.protocols import v2_error

    req = parse_v2_request(_tensor("BYTES", ["a", "b"], "b"), ["a", "b"])
    exc = v2_error(InvalidInputError("'instances[1].b' is bad.",
                                     [ErrorDetail("instances[1].b", "type")]), req)
    assert type(exc) is InvalidInputError
    assert exc.details[0].path == "inputs[0].data[1]" and "inputs[0].data[1]" in exc.message
    exc = v2_error(ContractViolation("x", [ErrorDetail("instances[0]", "type")]), req)
    assert type(exc) is ContractViolation and exc.details[0].path == "inputs.data[0]"


def test_each_contract_output_is_its_own_tensor(pairs: TestClient) -> None:
    meta = pairs.get("/v2/models/multi").json()
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("sum", "FP64"), ("product", "FP64")]
    body = {"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                       {"name": "b", "shape": [2], "datatype": "FP64", "data": [3.0, 4.0]}]}
    r = pairs.post("/v2/models/multi/infer", json=body)
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [(o["name"], o["shape"], o["datatype"], o["data"]) for o in outs] == [
        ("sum", [2], "FP64", [4.0, 6.0]), ("product", [2], "FP64", [3.0, 8.0])]
    r = pairs.post("/v2/models/multi/infer", json={**body, "outputs": [{"name": "product"}]})
    assert r.status_code == 200, r.text
    assert [(o["name"], o["data"]) for o in r.json()["outputs"]] == [("product", [3.0, 8.0])]


def test_a_requested_output_the_answer_lacks_is_never_an_empty_200() -> None:
    with pytest.raises(HTTPProblem) as caught:
        v2_answer(model="m", version=1, predictions=[1.0], probabilities=None, classes=None,
                  output_names=["sum", "product"], requested=("product",),
                  prediction_ids=["p"], answered_by="m:1", violations=[], request_id=None)
    assert caught.value.status == 500
    assert caught.value.details[0].path == "outputs[0].name"


def test_metadata_types_integer_labels_as_infer_answers_them(tmp_path: Path) -> None:
    from fixtures.models import IRIS_FEATURES, sklearn_iris

    model = sklearn_iris(tmp_path)
    fields = "".join(f"    - {{name: {f}, type: float}}\n" for f in IRIS_FEATURES)
    client = _serve(tmp_path, (
        "service: {name: s, owners: [t@example.com]}\n"
        "models:\n  - {name: iris, runtime: sklearn, artifact: iris.skops, "
        f"options: {{feature_names: [{', '.join(IRIS_FEATURES)}]}}}}\n"
        f"contract:\n  inputs:\n{fields}"
        "  outputs:\n    - {name: species, type: category, categories: [0, 1, 2]}\n"))
    c = next(client)
    try:
        meta = {o["name"]: o for o in c.get("/v2/models/iris").json()["outputs"]}
        rows = model.sample[:2]
        body = {"inputs": [{"name": f, "shape": [2], "datatype": "FP64",
                            "data": [float(r[f]) for r in rows]} for f in IRIS_FEATURES],
                "outputs": [{"name": "species"}, {"name": "predict_proba"}]}
        r = c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 200, r.text
        got = {o["name"]: o for o in r.json()["outputs"]}
        assert meta["species"]["datatype"] == got["species"]["datatype"] == "INT64"
        assert meta["predict_proba"]["parameters"]["classes"] == \
            got["predict_proba"]["parameters"]["classes"] == [0, 1, 2]
    finally:
        next(client, None)
