"""Fuzzing the API: schemathesis against its own OpenAPI (live server) and hypothesis bodies.

The bar: bad input is always a 4xx with the JSON error body, never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from keelwork.interfaces.http.app import create_app
from keelwork.service.assembly import open_service
from keelwork.spec import load_spec
from live_server import ADDER_SPEC as SPEC
from live_server import FIXTURES, running_server


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    (d / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    return d


@pytest.fixture(scope="module")
def live(project: Path) -> Iterator[str]:
    with running_server(project) as base:
        yield base


def test_schemathesis_finds_no_server_error(live: str) -> None:
    import schemathesis
    from schemathesis.core.failures import FailureGroup

    schema = schemathesis.openapi.from_url(f"{live}/openapi.json")
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()

        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=live, timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:200]}")
            elif response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error", "details"}, body
            try:
                case.validate_response(response)
            except FailureGroup as exc:  # schema conformance: report, keep fuzzing
                for f in exc.exceptions:
                    # The schema cannot say that a tensor's data must match its shape, or
                    # that a model name must exist: a 4xx for such "schema-valid" input is
                    # right. Every other conformance failure counts.
                    if "Schema-valid request rejected" not in str(f):
                        failures.append(f"{case.method} {case.formatted_path}: {f}")

        check()
    assert calls > 100
    assert not failures, "\n".join(failures[:20])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
records = st.dictionaries(st.sampled_from(["a", "b", "c", "zz", ""]), json_values, max_size=4)
v1_bodies = st.one_of(json_values, st.fixed_dictionaries(
    {"instances": st.lists(st.one_of(records, json_values), max_size=5)}))
v2_bodies = st.one_of(json_values, st.fixed_dictionaries({"inputs": st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "x"]),
                           "shape": st.lists(st.integers(-2, 4), max_size=3),
                           "datatype": st.sampled_from(["FP64", "INT64", "BYTES", "nope"]),
                           "data": json_values}), max_size=3)}))


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[TestClient]:
    service = open_service(load_spec(project / "keel.yaml"))
    app = create_app(service.gateway, on_startup=service.start, on_shutdown=service.close)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=v1_bodies)
def test_random_v1_bodies_never_5xx(client: TestClient, body: Any) -> None:
    r = client.post("/v1/models/adder:predict", content=json.dumps(body),
                    headers={"content-type": "application/json"})
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"error", "details"}


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=v2_bodies)
def test_random_v2_bodies_never_5xx(client: TestClient, body: Any) -> None:
    r = client.post("/v2/models/adder/infer", content=json.dumps(body),
                    headers={"content-type": "application/json"})
    assert r.status_code < 500, (body, r.text)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), name=st.text(min_size=1, max_size=20))
def test_random_bytes_and_model_names_never_5xx(client: TestClient, raw: bytes,
                                                name: str) -> None:
    from urllib.parse import quote

    r = client.post(f"/v1/models/{quote(name, safe='')}:predict", content=raw,
                    headers={"content-type": "application/json"})
    assert r.status_code < 500, (raw, name, r.text)


def test_deeply_nested_body_is_4xx(client: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/v1/models/adder:predict", content=deep,
                    headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500


_REF_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"])
refs = st.one_of(
    st.text(_REF_CHARS, max_size=30),
    st.builds(lambda a, b: f"{a}@{b}", st.text(_REF_CHARS, max_size=10),
              st.text(_REF_CHARS, max_size=10)),
    st.builds(lambda a, b: f"{a}:{b}", st.sampled_from(["adder", "", "x"]),
              st.integers(-10, 10**30).map(str)),
    st.sampled_from(["adder@..", "adder@-1", "adder@0", "adder@\x00", "adder@ ", "adder@a@b",
                     "adder@99999999999999999999999", "1 ", "adder@champion", "adder:1"]),
)
_V2_BODY = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
                       {"name": "b", "shape": [1], "datatype": "INT64", "data": [1]}]}


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=refs)
def test_random_model_references_never_5xx(client: TestClient, ref: str) -> None:
    """Issue 13 #10: path, header and V2 version path; every refusal is the error shape."""
    from urllib.parse import quote

    q = quote(ref, safe="")
    header = "".join(c for c in ref if " " <= c <= "~")  # what an HTTP header can carry
    for method, path, body, headers in (
            ("POST", f"/v1/models/{q}:predict", {"instances": [{"a": 1, "b": 1}]}, {}),
            ("POST", "/v1/models/adder:predict", {"instances": [{"a": 1, "b": 1}]},
             {"x-keel-model-ref": header}),
            ("POST", f"/v2/models/adder/versions/{q}/infer", _V2_BODY, {}),
            ("POST", f"/v2/models/{q}/infer", _V2_BODY, {}),
            ("GET", f"/v2/models/adder/versions/{q}", None, {}),
            ("GET", f"/v1/models/{q}", None, {})):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code < 500, (method, path, headers, r.text)
        if r.status_code >= 400:
            out = r.json()
            assert set(out) == {"error", "details"} and out["details"], out
