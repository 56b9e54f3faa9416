"""`keel serve --engine mosec` and `--engine granian`: a Rust front before the V1 predict route,
keelwork's guards once per batch, each request answered on its own. Under concurrent load every
valid request is answered 200, a contract-violating one its own 422 naming each field and a
malformed one its own 400, the prediction log holds every acknowledged answer, /metrics on the
admin port counts them, a SIGKILL of the whole process tree under load loses no acknowledged
answer, and API keys are checked on predict (granian) or the keel.yaml refused with exit code 2
(Mosec, whose workers never see the headers).
Each engine is skipped, with the reason, where its package is not installed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from fleet import load, stop
from keelwork.adapters.stores.engine import make_engine
from live_server import (
    ADDER_SPEC,
    FAST_ENGINES,
    FIXTURES,
    fast_engine,
    free_ports,
    ready_fast_engine,
    serve_fast_engine,
)

ROUTE = "/v1/models/adder:predict"


@pytest.fixture(params=FAST_ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    pytest.importorskip(name, reason=f"{name} is not installed (pip install 'keelwork[{name}]')")
    return name


def _predictions_metric(admin: str) -> float:
    body = httpx.get(f"{admin}/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(body) for s in f.samples
               if s.name == "keelwork_predictions_total" and s.labels.get("model") == "adder")


def test_batched_answers_each_request_on_its_own_and_logs_every_answer(tmp_path: Path,
                                                                      engine: str) -> None:
    db_path = tmp_path / "keel.db"
    (tmp_path / "keel.yaml").write_text(
        ADDER_SPEC.format(fx=FIXTURES)
        + f"storage: {{url: 'sqlite:///{db_path}', durability: sync}}\n")
    with fast_engine(tmp_path, engine) as (base, admin, proc):
        one = httpx.post(base + ROUTE, json={"instances": [{"a": 1.5, "b": 2}]}, timeout=10)
        assert one.status_code == 200, one.text
        assert one.json()["predictions"] == [3.5]
        assert one.json()["model_name"] == "adder"
        acked: list[str] = list(one.json()["prediction_ids"])

        # Bad requests sent while six clients keep the batches full: each is refused alone.
        refusals: list[httpx.Response] = []

        def hostile() -> None:
            with httpx.Client(base_url=base, timeout=20) as c:
                for _ in range(10):
                    refusals.append(c.post(ROUTE, json={
                        "instances": [{"a": -1, "b": 2}, {"a": 1, "b": "x"}]}))
                    refusals.append(c.post(ROUTE, content=b'{"instances": [',
                                           headers={"content-type": "application/json"}))
                    time.sleep(0.05)

        bad = threading.Thread(target=hostile)
        bad.start()
        load(base, 3.0, acked, clients=6, timeout=20)  # fails on any answer but 200
        bad.join(timeout=60)
        assert len(acked) > 50, f"too little load to mean anything: {len(acked)}"
        assert [r.status_code for r in refusals] == [422, 400] * 10
        violation = refusals[0].json()
        assert {d["path"] for d in violation["details"]} == {"instances[0].a", "instances[1].b"}
        assert {d["rule"] for d in violation["details"]} == {"min", "type"}
        assert refusals[1].json()["details"][0]["rule"] == "json"
        # The admin port's /metrics sums every process of the tree.
        assert _predictions_metric(admin) == float(len(acked))
    assert proc.returncode == 0, (tmp_path / "server.log").read_text()[-3000:]

    # Every acknowledged prediction is in the durable log, once; the refusals are there too.
    db = make_engine(f"sqlite:///{db_path}")
    with db.connect() as conn:
        ok = {str(i): int(n) for i, n in conn.execute(text(
            "select id, count(*) from predictions where status = 'ok' group by id"))}
        rejected = conn.execute(text(
            "select count(*) from predictions where status = 'rejected'")).scalar_one()
    db.dispose()
    assert set(ok) == set(acked) and set(ok.values()) == {1}
    assert len(acked) == len(set(acked))
    assert rejected == 20  # ten refused requests of two instances each


def test_api_keys_are_checked_or_the_keel_yaml_refused(tmp_path: Path, engine: str) -> None:
    db_path = tmp_path / "keel.db"
    (tmp_path / "keel.yaml").write_text(
        ADDER_SPEC.format(fx=FIXTURES) + "guards: {require_api_key: true}\n"
        + f"storage: {{url: 'sqlite:///{db_path}'}}\n")
    port, admin_port = free_ports(2)
    proc = serve_fast_engine(tmp_path, engine, "--port", str(port), "--admin-port", str(admin_port))
    if engine == "mosec":  # its workers never see the headers: refused, never ignored
        assert proc.wait(timeout=120) == 2
        said = (tmp_path / "server.log").read_text()
        assert "guards.require_api_key" in said and "cannot" in said
        return
    base, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    try:
        ready_fast_engine(proc, base, admin, tmp_path / "server.log")
        made = subprocess.run(
            [sys.executable, "-m", "keelwork.interfaces.cli.main", "keys", "create",
             "--scope", "predict", "--name", "client", "--project", str(tmp_path)],
            capture_output=True, text=True, check=True)
        key = made.stdout.strip().splitlines()[-1]
        one = {"instances": [{"a": 1, "b": 2}]}
        bare = httpx.post(base + ROUTE, json=one, timeout=10)
        assert bare.status_code == 401, bare.text
        assert bare.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.post(base + ROUTE, json=one, headers={"x-api-key": "kw_nope"}, timeout=10)
        assert wrong.status_code == 401, wrong.text
        keyed = httpx.post(base + ROUTE, json=one, timeout=10,
                           headers={"authorization": f"Bearer {key}"})
        assert keyed.status_code == 200, keyed.text
        assert keyed.json()["predictions"] == [3]
    finally:
        stop(proc, timeout=60)


def test_granian_addresses_versions_and_aliases_as_the_default_engine(tmp_path: Path) -> None:
    """``name@ref`` in the path and ``x-keel-model-ref`` reach the gateway on the fast port,
    under ``guards.version_refs`` (a predict key may name aliases only; an admin key any)."""
    pytest.importorskip("granian", reason="granian is not installed (pip install "
                                          "'keelwork[granian]')")
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.registration import register_model

    db_path = tmp_path / "keel.db"
    (tmp_path / "keel.yaml").write_text(
        ADDER_SPEC.format(fx=FIXTURES)
        + "guards: {require_api_key: true, version_refs: aliases}\n"
        + f"storage: {{url: 'sqlite:///{db_path}'}}\n")
    registry = open_registry(tmp_path, f"sqlite:///{db_path}")
    for function, aliases in (("total", ["champion"]), ("echo", ["next"])):
        register_model(registry, "adder", f"fakes:{function}", "python",
                       options={"path": str(FIXTURES)}, aliases=aliases)
    registry.close()
    keel = [sys.executable, "-m", "keelwork.interfaces.cli.main"]
    keys = {scope: subprocess.run(
        [*keel, "keys", "create", "--scope", scope, "--name", scope, "--project", str(tmp_path)],
        capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        for scope in ("predict", "admin")}
    one = {"instances": [{"a": 1, "b": 2}]}
    with fast_engine(tmp_path) as (base, _admin, _proc), httpx.Client(base_url=base,
                                                                      timeout=10) as c:
        def call(key: str, path: str = ROUTE, **headers: str) -> httpx.Response:
            return c.post(path, json=one, headers={"x-api-key": key, **headers})

        assert call(keys["predict"]).json()["model_version"] == 1
        for aliased in (call(keys["predict"], "/v1/models/adder@next:predict"),
                        call(keys["predict"], **{"x-keel-model-ref": "next"})):
            assert aliased.status_code == 200, aliased.text
            assert aliased.json()["model_version"] == 2
            assert aliased.json()["predictions"] == [{"a": 1, "b": 2}]  # echo, not total
        for numbered in ({"path": "/v1/models/adder@2:predict"},
                         {"x-keel-model-ref": "2"}):
            refused = call(keys["predict"], **numbered)
            assert refused.status_code == 403, refused.text
            assert refused.json()["details"] == [
                {"path": "model_ref", "rule": "version_refs", "got": "2"}]
            allowed = call(keys["admin"], **numbered)  # admins may
            assert allowed.status_code == 200 and allowed.json()["model_version"] == 2
        unknown = call(keys["predict"], **{"x-keel-model-ref": "nowhere"})
        assert unknown.status_code == 404, unknown.text
        clash = call(keys["predict"], "/v1/models/adder@next:predict",
                     **{"x-keel-model-ref": "champion"})
        assert clash.status_code == 400, clash.text
    db = make_engine(f"sqlite:///{db_path}")
    with db.connect() as conn:
        logged = sorted(v for (v,) in conn.execute(text(
            "select version from predictions where status = 'ok'")))
    db.dispose()
    assert logged == [1, 2, 2, 2, 2]


def test_kill_9_of_the_whole_tree_under_load_loses_no_acknowledged_answer(
        tmp_path: Path, engine: str) -> None:
    db_path = tmp_path / "keel.db"
    (tmp_path / "keel.yaml").write_text(
        ADDER_SPEC.format(fx=FIXTURES)
        + f"storage: {{url: 'sqlite:///{db_path}', durability: sync}}\n")
    port, admin_port = free_ports(2)
    base, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    proc = serve_fast_engine(tmp_path, engine, "--port", str(port), "--admin-port", str(admin_port))
    acked: list[str] = []
    lock = threading.Lock()
    halt = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as c:
            i = 0
            while not halt.is_set():
                i += 1
                try:
                    r = c.post(ROUTE, json={"instances": [{"a": worker, "b": i}]})
                except httpx.TransportError:  # the server died mid-request: not acknowledged
                    return
                if r.status_code == 200:
                    with lock:
                        acked.extend(r.json()["prediction_ids"])

    try:
        ready_fast_engine(proc, base, admin, tmp_path / "server.log")
        clients = [threading.Thread(target=client, args=(w,)) for w in range(6)]
        for t in clients:
            t.start()
        time.sleep(2.0)
        os.killpg(proc.pid, signal.SIGKILL)  # the front, its workers and the admin app
        proc.wait(timeout=10)
        halt.set()
        for t in clients:
            t.join(timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(acked) > 50, f"too little load to mean anything: {len(acked)} acknowledged"
    db = make_engine(f"sqlite:///{db_path}")
    with db.connect() as conn:
        stored = {str(i) for (i,) in conn.execute(text("select id from predictions"))}
    db.dispose()
    missing = [i for i in acked if i not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions lost"


def test_granian_reads_bodies_within_the_size_and_time_guards(tmp_path: Path) -> None:
    """The fast port holds no more than guards.max_body_bytes of a body, chunked or not, and a
    client trickling its body past guards.body_read_timeout_s gets 408, as on the default
    engine."""
    pytest.importorskip("granian", reason="granian is not installed (pip install "
                        "'keelwork[granian]')")
    (tmp_path / "keel.yaml").write_text(
        ADDER_SPEC.format(fx=FIXTURES)
        + "guards: {max_body_bytes: 2000, body_read_timeout_s: 1}\n")
    with fast_engine(tmp_path) as (base, _admin, _proc):
        big = b'{"instances": [' + b'{"a": 1, "b": 2},' * 400 + b'{"a": 1, "b": 2}]}'
        whole = httpx.post(base + ROUTE, content=big, timeout=10,
                           headers={"content-type": "application/json"})
        assert whole.status_code == 413, whole.text
        assert whole.json()["details"][0]["rule"] == "max_bytes"

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 500):
                yield big[start:start + 500]

        chunked = httpx.post(base + ROUTE, content=chunks(), timeout=10,
                             headers={"content-type": "application/json"})
        assert chunked.status_code == 413, chunked.text
        # A body promised in full and trickled: half of it, then nothing for 2 s.
        body = b'{"instances": [{"a": 1, "b": 2}]}'
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST " + ROUTE.encode() + b" HTTP/1.1\r\nhost: x\r\n"
                      b"content-type: application/json\r\ncontent-length: "
                      + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            time.sleep(2.0)
            answer = s.recv(65536).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 408"), answer[:300]
        assert "read_timeout" in answer
        ok = httpx.post(base + ROUTE, json={"instances": [{"a": 1, "b": 2}]}, timeout=10)
        assert ok.status_code == 200 and ok.json()["predictions"] == [3.0]


def test_the_official_open_inference_client_works_on_the_granian_port(tmp_path: Path) -> None:
    """tritonclient, the Open Inference Protocol's official client, as is, on the fast port:
    server and model health, metadata, and an inference answered from a batch."""
    pytest.importorskip("granian", reason="granian is not installed (pip install "
                        "'keelwork[granian]')")
    import numpy as np
    import tritonclient.http as tc

    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES))
    with fast_engine(tmp_path) as (base, _admin, _proc):
        client = tc.InferenceServerClient(url=base.removeprefix("http://"))
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("adder")
            meta = client.get_model_metadata("adder")
            assert meta["name"] == "adder" and meta["versions"] == ["1"]
            a = tc.InferInput("a", [3], "FP64")
            a.set_data_from_numpy(np.array([1.0, 2.0, 3.0]), binary_data=False)
            b = tc.InferInput("b", [3], "INT64")
            b.set_data_from_numpy(np.array([10, 20, 30], dtype=np.int64), binary_data=False)
            out = tc.InferRequestedOutput("predict", binary_data=False)
            result = client.infer("adder", [a, b], outputs=[out])
            assert result.as_numpy("predict").tolist() == [11.0, 22.0, 33.0]
            assert result.get_response()["model_version"] == "1"
            bad = tc.InferInput("a", [1], "FP64")
            bad.set_data_from_numpy(np.array([-1.0]), binary_data=False)
            one = tc.InferInput("b", [1], "INT64")
            one.set_data_from_numpy(np.array([1], dtype=np.int64), binary_data=False)
            with pytest.raises(tc.InferenceServerException, match=r"inputs\[0\]\.data\[0\]"):
                client.infer("adder", [bad, one])  # the contract's min, named by tensor path
        finally:
            client.close()


#: The operations of keelwork's OpenAPI that the granian port serves.
FAST_OPERATIONS = {("POST", "/v1/models/{name}:predict"), ("POST", "/v2/models/{name}/infer"),
                   ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
                   ("GET", "/v2/models/{name}/ready"), ("GET", "/v2/models/{name}")}


def test_schemathesis_finds_no_server_error_on_the_granian_port(tmp_path: Path) -> None:
    """The fuzz suite of the default engine (tests/integration/test_fuzz.py), on the fast
    port: keelwork's own OpenAPI (from the admin port), every operation the fast port serves,
    bad input always a 4xx with the JSON error body, answers conforming to the schema."""
    pytest.importorskip("granian", reason="granian is not installed (pip install "
                        "'keelwork[granian]')")
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.core.failures import FailureGroup

    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES))
    with fast_engine(tmp_path) as (base, admin, _proc):
        schema = schemathesis.openapi.from_url(f"{admin}/openapi.json")
        failures: list[str] = []
        seen: set[tuple[str, str]] = set()
        calls = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) not in FAST_OPERATIONS:
                continue
            seen.add((operation.method.upper(), operation.path))

            @settings(max_examples=50, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(base_url=base, timeout=10)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> "
                                    f"{response.status_code}: {response.text[:200]}")
                elif response.status_code >= 400:
                    assert set(response.json()) == {"error", "details"}, response.text
                try:
                    case.validate_response(response)
                except FailureGroup as exc:  # as in test_fuzz.py: schema-valid 4xx is right
                    failures.extend(f"{case.method} {case.formatted_path}: {f}"
                                    for f in exc.exceptions
                                    if "Schema-valid request rejected" not in str(f))

            check()
        assert seen == FAST_OPERATIONS
        assert calls > 100
        assert not failures, "\n".join(failures[:20])


def test_granian_records_tenant_and_subject_so_erasure_finds_them(tmp_path: Path) -> None:
    """A prediction served on the fast port carries its request's tenant and subject
    (``x-subject-id``), as on the default engine, so `keel export` finds it and `keel erase`
    removes it; a request that names neither shares its batch with the rest."""
    pytest.importorskip("granian", reason="granian is not installed (pip install "
                        "'keelwork[granian]')")
    db_path = tmp_path / "keel.db"
    (tmp_path / "keel.yaml").write_text(
        ADDER_SPEC.format(fx=FIXTURES)
        + f"storage: {{url: 'sqlite:///{db_path}', durability: sync}}\n")
    with fast_engine(tmp_path) as (base, _admin, _proc):
        ids: dict[str, list[str]] = {"ann": [], "bob": [], "": []}
        for i in range(6):
            for subject in ids:
                headers = {"x-subject-id": subject, "x-tenant-id": "acme"} if subject else {}
                r = httpx.post(base + ROUTE, json={"instances": [{"a": i, "b": 1}]},
                               headers=headers, timeout=10)
                assert r.status_code == 200, r.text
                ids[subject] += r.json()["prediction_ids"]
    db = make_engine(f"sqlite:///{db_path}")
    with db.connect() as conn:
        rows = {str(i): (t, s) for i, t, s in conn.execute(text(
            "select id, tenant, subject_id from predictions"))}
    db.dispose()
    assert {rows[i] for i in ids["ann"]} == {("acme", "ann")}
    assert {rows[i] for i in ids["bob"]} == {("acme", "bob")}
    assert {rows[i] for i in ids[""]} == {(None, None)}
    keel = [sys.executable, "-m", "keelwork.interfaces.cli.main"]
    exported = subprocess.run([*keel, "export", "--subject", "ann", "--project", str(tmp_path)],
                              capture_output=True, text=True, check=True)
    assert all(i in exported.stdout for i in ids["ann"])
    assert not any(i in exported.stdout for i in ids["bob"])
    subprocess.run([*keel, "erase", "--subject", "ann", "--reason", "ticket 7", "--project",
                    str(tmp_path)], capture_output=True, text=True, check=True)
    db = make_engine(f"sqlite:///{db_path}")
    with db.connect() as conn:
        subjects = {s for (s,) in conn.execute(text("select subject_id from predictions"))}
    db.dispose()
    assert "ann" not in subjects and "bob" in subjects
