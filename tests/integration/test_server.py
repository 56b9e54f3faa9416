"""`keel serve` as a real process: an official Open Inference Protocol client, promtool on
/metrics, and kill -9 under load without losing an acknowledged prediction."""

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
from live_server import FIXTURES, running_server
from live_server import start_server as _start


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    return tmp_path


@pytest.fixture
def server(project: Path) -> Iterator[str]:
    with running_server(project) as base:
        yield base


def test_official_open_inference_client(server: str) -> None:
    """tritonclient (Triton's official client of the Open Inference Protocol) works as is."""
    import numpy as np
    import tritonclient.http as tc

    client = tc.InferenceServerClient(url=server.removeprefix("http://"))
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
def test_metrics_pass_promtool(server: str) -> None:
    for i in range(5):
        httpx.post(f"{server}/v1/models/adder:predict",
                   json={"instances": [{"a": i, "b": 1}]}).raise_for_status()
    httpx.post(f"{server}/v1/models/adder:predict", json={"instances": [{"a": -1, "b": 1}]})
    text = httpx.get(f"{server}/metrics").text
    assert "keelwork_requests_total" in text
    proc = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                          capture_output=True, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()


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


def test_bad_references_and_methods_are_4xx_in_the_error_shape(server: str) -> None:
    """Issue 11 #6 / 13 #10 against the real server: no 500, the reference named."""
    one = {"instances": [{"a": 1, "b": 1}]}
    cases = [
        ("/v1/models/adder:predict", {"x-keel-model-ref": "adder@adder@champion"},
         "adder@adder@champion"),
        ("/v1/models/adder@bad%20alias:predict", {}, "adder@bad alias"),
        ("/v1/models/adder@99999999999999999999999:predict", {}, "99999999999999999999999"),
    ]
    for path, headers, shown in cases:
        r = httpx.post(f"{server}{path}", json=one, headers=headers)
        assert r.status_code == 400, r.text
        assert shown in r.json()["error"] and r.json()["details"]
    # the forms the message offers work
    for headers in ({"x-keel-model-ref": "adder@champion"}, {"x-keel-model-ref": "adder:1"}):
        assert httpx.post(f"{server}/v1/models/adder:predict", json=one,
                          headers=headers).status_code == 200
    r = httpx.get(f"{server}/v1/models/adder:predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = httpx.get(f"{server}/nowhere")
    assert r.status_code == 404 and set(r.json()) == {"error", "details"}
