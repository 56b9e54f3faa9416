"""`keel serve` as a real process: an official Open Inference Protocol client, promtool on
/metrics, and kill -9 under load without losing an acknowledged prediction. The protocol tests
run on three engines: one uvicorn process; Ray Serve's two replicas on PostgreSQL; and
``--engine granian``, whose fast port takes the predict, V2 and health calls and whose admin
port (keelwork's whole app) the ``/metrics`` and feedback calls, as a client of it sends them."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live_server import ADDER_SPEC as SPEC
from live_server import FIXTURES, Served, engine_spec, running_server, served
from live_server import start_server as _start
from pg import create_database, drop_database


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    return tmp_path


@pytest.fixture(scope="module",
                params=["uvicorn", pytest.param("ray", marks=pytest.mark.postgres), "granian"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server per engine for this module's protocol tests (they only read what they
    send): uvicorn on SQLite, Ray Serve's two replicas on a fresh PostgreSQL database, or
    granian's fast port beside keelwork's app on SQLite."""
    engine: str = request.param
    project = tmp_path_factory.mktemp(f"server-{engine}")
    url: str | None = None
    if engine == "ray":
        pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install "
                            "'keelwork[ray]'")
        admin: str = request.getfixturevalue("pg_url")
        url = create_database(admin)
    if engine == "granian":
        pytest.importorskip("granian", reason="granian is not installed: pip install "
                            "'keelwork[granian]'")
    try:
        (project / "keel.yaml").write_text(engine_spec(SPEC.format(fx=FIXTURES), engine, url))
        with served(project, engine) as where:
            yield where
    finally:
        if url is not None:
            drop_database(admin, url)


def test_official_open_inference_client(server: Served) -> None:
    """tritonclient (Triton's official client of the Open Inference Protocol) works as is."""
    import numpy as np
    import tritonclient.http as tc

    client = tc.InferenceServerClient(url=server.fast.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("adder")
        meta = client.get_model_metadata("adder")
        assert meta["name"] == "adder"
        a = tc.InferInput("a", [3], "FP64")
        a.set_data_from_numpy(np.array([1.0, 2.0, 3.0]), binary_data=False)
        b = tc.InferInput("b", [3], "INT64")
        b.set_data_from_numpy(np.array([10, 20, 30], dtype=np.int64), binary_data=False)
        out = tc.InferRequestedOutput("predict", binary_data=False)
        result = client.infer("adder", [a, b], outputs=[out])
        assert result.as_numpy("predict").tolist() == [11.0, 22.0, 33.0]
        assert result.get_response()["model_version"] == "1"
    finally:
        client.close()


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"),
                    reason="promtool (Debian package 'prometheus') is not installed")
def test_metrics_pass_promtool(server: Served) -> None:
    for i in range(5):
        httpx.post(f"{server.fast}/v1/models/adder:predict",
                   json={"instances": [{"a": i, "b": 1}]}).raise_for_status()
    httpx.post(f"{server.fast}/v1/models/adder:predict", json={"instances": [{"a": -1, "b": 1}]})
    text = httpx.get(f"{server.app}/metrics").text
    assert "keelwork_requests_total" in text
    proc = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                          capture_output=True, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()


def test_feedback_joins_predictions_whichever_process_answered(server: Served) -> None:
    """Labels sent for predictions answered over fresh connections (on Ray, by either replica,
    to a replica of its own choosing) are stored once against the shared log; sent again they
    are duplicates; an id nobody answered is reported as unknown."""
    ids: list[str] = []
    answered_by: set[str] = set()
    for i in range(12):
        r = httpx.post(f"{server.fast}/v1/models/adder:predict",
                       json={"instances": [{"a": i, "b": 1}]})
        assert r.status_code == 200, r.text
        ids += r.json()["prediction_ids"]
        answered_by.add(r.headers.get("x-keel-replica", "one process"))
    labels = [{"prediction_id": pid, "label": float(i)} for i, pid in enumerate(ids)]
    first = httpx.post(f"{server.app}/v1/feedback", json={"labels": labels})
    assert first.status_code == 200, first.text
    assert (first.json()["stored"], first.json()["unknown"]) == (12, 0), first.json()
    again = httpx.post(f"{server.app}/v1/feedback", json={"labels": labels})
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 12), again.json()
    unknown = httpx.post(f"{server.app}/v1/feedback",
                         json={"labels": [{"prediction_id": "nobody-answered-this",
                                           "label": 1.0}]})
    assert unknown.json()["unknown"] == 1, unknown.json()
    print(f"answered by {len(answered_by)} process(es)")


def test_kill_9_under_load_loses_no_acknowledged_prediction(project: Path) -> None:
    proc, base = _start(project)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as c:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = c.post("/v1/models/adder:predict",
                               json={"instances": [{"a": worker, "b": i}]})
                except httpx.TransportError:
                    return  # the server is gone
                if r.status_code == 200:
                    with lock:
                        acked.extend(r.json()["prediction_ids"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) > 50, f"too little load to mean anything: {len(acked)} acknowledged"
    con = sqlite3.connect(project / ".keel" / "keel.db")
    try:
        stored = {row[0] for row in con.execute("select id from predictions")}
    finally:
        con.close()
    missing = [i for i in acked if i not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions lost"


def test_bad_references_and_methods_are_4xx_in_the_error_shape(server: Served) -> None:
    """Issue 11 #6 / 13 #10 against the real server: no 500, the reference named."""
    one = {"instances": [{"a": 1, "b": 1}]}
    cases = [
        ("/v1/models/adder:predict", {"x-keel-model-ref": "adder@adder@champion"},
         "adder@adder@champion"),
        ("/v1/models/adder@bad%20alias:predict", {}, "adder@bad alias"),
        ("/v1/models/adder@99999999999999999999999:predict", {}, "99999999999999999999999"),
    ]
    for path, headers, shown in cases:
        r = httpx.post(f"{server.fast}{path}", json=one, headers=headers)
        assert r.status_code == 400, r.text
        assert shown in r.json()["error"] and r.json()["details"]
    # the forms the message offers work
    for headers in ({"x-keel-model-ref": "adder@champion"}, {"x-keel-model-ref": "adder:1"}):
        assert httpx.post(f"{server.fast}/v1/models/adder:predict", json=one,
                          headers=headers).status_code == 200
    r = httpx.get(f"{server.fast}/v1/models/adder:predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = httpx.get(f"{server.fast}/nowhere")
    assert r.status_code == 404 and set(r.json()) == {"error", "details"}


FAILING_SPEC = """\
service: {{name: failing, owners: [t@example.com]}}
models:
  - {{name: adder, runtime: python, artifact: "fakes:total", options: {{path: "{fx}"}}}}
  - name: sleepy
    runtime: python
    artifact: "fakes:slow"
    options: {{path: "{fx}"}}
    timeout_ms: 100
    batching: {{enabled: false}}
contract:
  inputs:
    - {{name: a, type: float, min: 0}}
"""


def test_failed_requests_leave_a_trace(tmp_path: Path) -> None:
    """Issue 11 #7 / 13 #13 with `keel serve --access-log`: one stdout line per request (504
    and 422 included), the 504 in `keel log tail --status error`, and a client that hangs up
    mid-body is one INFO line, no traceback."""
    import json
    import socket
    import sys

    from live_server import free_port

    (tmp_path / "keel.yaml").write_text(FAILING_SPEC.format(fx=FIXTURES))
    port = free_port()
    out, err = (tmp_path / "stdout.log").open("wb"), (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
         str(tmp_path / "keel.yaml"), "--port", str(port), "--log-level", "info"],
        stdout=out, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "stderr.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(f"{base}/v1/models/sleepy:predict", json={"instances": [{"a": 1}]})
        assert r.status_code == 504
        assert httpx.post(f"{base}/v1/models/adder:predict",
                          json={"instances": [{"a": -1}]}).status_code == 422
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /v1/models/adder:predict HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                      b'{"instances": [')
        time.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        out.close()
        err.close()
    lines = [json.loads(x) for x in (tmp_path / "stdout.log").read_text().splitlines()
             if x.startswith("{")]
    predict = [x for x in lines if x["path"].endswith(":predict")]
    assert [x["status"] for x in predict] == [504, 422, 499], predict
    assert "did not answer within 100 ms" in predict[0]["error"]
    stderr = (tmp_path / "stderr.log").read_text()
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    result = subprocess.run(
        [sys.executable, "-m", "keelwork.interfaces.cli.main", "log", "tail", "--status",
         "error", "--json", "--project", str(tmp_path)], capture_output=True, text=True,
        check=False)
    assert result.returncode == 0, result.stderr
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(x["model"], x["status"], x["guard"]) for x in records] == [
        ("sleepy", "error", "timeout")]
    assert "did not answer within 100 ms" in records[0]["request_meta"]["error"]


def test_feedback_is_checked_against_the_output_contract(tmp_path: Path) -> None:
    """Issues 11 #8, 12 #5, 13 #14 against `keel serve`: wrong labels, implausible times and
    duplicate keys are refused, nothing is stored."""
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES) + (
        "  outputs:\n    - {name: label, type: category, categories: [bad, good]}\n"))
    with running_server(tmp_path) as base:
        r = httpx.post(f"{base}/v1/models/adder:predict", json={"instances": [{"a": 1, "b": 2}]})
        pid = r.json()["prediction_ids"][0]
        for label in ("purple", 1):
            r = httpx.post(f"{base}/v1/feedback", json=[{"prediction_id": pid, "label": label}])
            assert r.status_code == 422, r.text
            assert "'bad', 'good'" in r.json()["error"]
        r = httpx.post(f"{base}/v1/feedback",
                       json=[{"prediction_id": pid, "label": "good", "ts": "0001-01-01"}])
        assert r.status_code == 422 and r.json()["details"][0]["rule"] == "range"
        r = httpx.post(f"{base}/v1/feedback", headers={"content-type": "application/json"},
                       content=b'[{"prediction_id": "%s", "label": "bad", "label": "good"}]'
                       % pid.encode())
        assert r.status_code == 400 and r.json()["details"][0]["rule"] == "duplicate_key"
        r = httpx.post(f"{base}/v1/feedback", json=[{"prediction_id": pid, "label": "good"}])
        assert r.status_code == 200 and r.json()["stored"] == 1


def test_official_open_inference_client_gets_class_probabilities(tmp_path: Path) -> None:
    """Issue 11 #9: tritonclient on a classifier: metadata lists what infer returns, and the
    requested predict_proba comes back, per class."""
    import numpy as np
    import tritonclient.http as tc

    from fixtures.models import IRIS_FEATURES, sklearn_iris

    model = sklearn_iris(tmp_path)
    fields = "".join(f"    - {{name: {f}, type: float}}\n" for f in IRIS_FEATURES)
    (tmp_path / "keel.yaml").write_text(
        "service: {name: iris, owners: [t@example.com]}\n"
        "models:\n  - {name: iris, runtime: sklearn, artifact: iris.skops, "
        f"options: {{feature_names: [{', '.join(IRIS_FEATURES)}]}}}}\n"
        f"contract:\n  inputs:\n{fields}")
    with running_server(tmp_path) as base:
        client = tc.InferenceServerClient(url=base.removeprefix("http://"))
        try:
            meta = client.get_model_metadata("iris")
            assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
            assert meta["versions"] == ["1"]
            inputs = []
            for f in IRIS_FEATURES:
                t = tc.InferInput(f, [3], "FP64")
                t.set_data_from_numpy(np.array([r[f] for r in model.sample[:3]], dtype=float),
                                      binary_data=False)
                inputs.append(t)
            wanted = [tc.InferRequestedOutput(n, binary_data=False)
                      for n in ("predict", "predict_proba")]
            result = client.infer("iris", inputs, outputs=wanted)
            proba = result.as_numpy("predict_proba")
            labels = result.as_numpy("predict")
            assert proba.shape == (3, 3)
            assert np.allclose(proba.sum(axis=1), 1.0)
            assert proba.argmax(axis=1).tolist() == labels.tolist()
            only = client.infer("iris", inputs,
                                outputs=[tc.InferRequestedOutput("predict_proba",
                                                                 binary_data=False)])
            assert only.as_numpy("predict") is None
            with pytest.raises(Exception, match="no output 'nope'"):
                client.infer("iris", inputs,
                             outputs=[tc.InferRequestedOutput("nope", binary_data=False)])
        finally:
            client.close()
