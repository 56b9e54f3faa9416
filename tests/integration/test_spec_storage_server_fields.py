"""keel.yaml fields that no test set and checked before the registry of enforcers
(:mod:`keelwork.spec.enforced_by`) asked for one: ``kind``/``version``, ``service.name`` and
``description``, ``contract.inputs[].description``, ``contract.outputs[].pii``,
``models[].aliases`` and ``allow_unsafe_pickle``, ``guards.pii_redaction.text`` and
``entities``, ``storage.log_inputs`` and ``spool_dir``, ``server.host`` and ``port``.

Each test writes a fresh project, serves it (in process, or ``keel serve`` for the address) and
checks what the field promises where a user would see it."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ADDER = """\
service: {{name: fields-shop, owners: [t@example.com], description: "Adds a and b for the shop."}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
    aliases: [champion, stable]
contract:
  inputs:
    - {{name: a, type: float, description: "The first addend, in euros."}}
    - {{name: b, type: integer}}
    - {{name: note, type: text, required: false, max_length: 500}}
  outputs:
    - {{name: total, type: float}}
"""


def _project(tmp_path: Path, extra: str = "", name: str = "p") -> Path:
    project = tmp_path / name
    project.mkdir()
    (project / "keel.yaml").write_text(ADDER.format(fx=FIXTURES) + extra)
    return project


def _client(project: Path) -> TestClient:
    return TestClient(build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False,
                                       monitor_interval_s=0))


def _tail(project: Path) -> list[dict[str, Any]]:
    out = keel(project, "log", "tail", "--json", "-n", "50").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _predict(client: TestClient, instance: dict[str, Any], ref: str = "adder") -> Any:
    r = client.post(f"/v1/models/{ref}:predict", json={"instances": [instance]})
    assert r.status_code == 200, r.text
    return r


def test_kind_and_version_name_the_document(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert keel(project, "spec", "validate").returncode == 0
    for field, value in (("kind", "helm.yaml"), ("version", "2")):
        (project / "keel.yaml").write_text(f"{field}: {value}\n" + ADDER.format(fx=FIXTURES))
        refused = keel(project, "spec", "validate", check=False)
        assert refused.returncode != 0
        assert field in refused.stdout + refused.stderr


def test_service_and_field_descriptions_are_the_api_documents(tmp_path: Path) -> None:
    with _client(_project(tmp_path)) as client:
        doc = client.get("/openapi.json").json()
    assert "fields-shop" in doc["info"]["title"]  # service.name
    assert doc["info"]["description"] == "Adds a and b for the shop."  # service.description
    text = json.dumps(doc)
    assert "The first addend, in euros." in text  # contract.inputs[].description


def test_aliases_of_keel_yaml_address_the_registered_model(tmp_path: Path) -> None:
    with _client(_project(tmp_path)) as client:
        r = _predict(client, {"a": 1.0, "b": 2}, "adder@stable")
        assert r.headers["x-model-version"] == "1"
        assert client.post("/v1/models/adder@canary:predict",
                           json={"instances": [{"a": 1.0, "b": 2}]}).status_code == 404


def test_log_inputs_false_keeps_no_inputs_in_the_log(tmp_path: Path) -> None:
    kept = {}
    for log_inputs in ("true", "false"):
        project = _project(tmp_path, f"storage: {{log_inputs: {log_inputs}}}\n", log_inputs)
        with _client(project) as client:
            _predict(client, {"a": 1.5, "b": 2})
        (row,) = _tail(project)
        assert row["outputs"] is not None  # the answer is logged either way
        kept[log_inputs] = row["inputs"]
    assert kept["true"] == {"a": 1.5, "b": 2}
    assert not kept["false"]


def test_spool_lives_in_spool_dir(tmp_path: Path) -> None:
    project = _project(tmp_path, "storage: {spool_dir: elsewhere/spool}\n")
    with _client(project) as client:
        _predict(client, {"a": 1.0, "b": 2})
        assert (project / "elsewhere" / "spool").is_dir()  # the log's spool, opened at start
    assert not (project / ".keel" / "spool").exists()


def test_pii_entities_limits_what_is_redacted(tmp_path: Path) -> None:
    note = "mail zz.person@example.org or call +44 20 7946 0958"
    stored = {}
    for entities in ("[EMAIL_ADDRESS]", "[PHONE_NUMBER]"):
        name = entities.strip("[]").lower()
        project = _project(tmp_path, f"guards:\n  pii_redaction: {{entities: {entities}}}\n",
                           name)
        with _client(project) as client:
            _predict(client, {"a": 1.0, "b": 2, "note": note})
        stored[name] = _tail(project)[0]["inputs"]["note"]
    assert "zz.person@example.org" not in stored["email_address"]
    assert "7946 0958" in stored["email_address"]
    assert "7946 0958" not in stored["phone_number"]
    assert "zz.person@example.org" in stored["phone_number"]


def test_pii_text_mode_decides_what_the_log_keeps_of_free_text(tmp_path: Path) -> None:
    note = "mail zz.person@example.org or call +44 20 7946 0958"
    stored = {}
    for mode in ("redact", "pseudonymise", "drop", "keep"):
        project = _project(tmp_path, f"guards:\n  pii_redaction: {{text: {mode}}}\n", mode)
        with _client(project) as client:
            _predict(client, {"a": 1.0, "b": 2, "note": note})
        stored[mode] = _tail(project)[0]["inputs"]
    assert stored["redact"]["note"] == "mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>"
    assert re.fullmatch(r"mail <EMAIL_ADDRESS:[0-9a-f]{16}> or call <PHONE_NUMBER:[0-9a-f]{16}>",
                        stored["pseudonymise"]["note"])
    assert "note" not in stored["drop"] and stored["drop"]["a"] == 1.0
    assert stored["keep"]["note"] == note


def test_output_pii_mode_rewrites_the_logged_answer_only(tmp_path: Path) -> None:
    """``contract.outputs[].pii``: what the log keeps of an answer field; the client gets the
    answer as the model gave it."""
    email = "write zz.person@example.org"
    logged = {}
    for mode in ("redact", "drop"):
        project = tmp_path / mode
        project.mkdir()
        (project / "keel.yaml").write_text(
            "service: {name: echo, owners: [t@example.com]}\nmodels:\n"
            f"  - {{name: echo, runtime: python, artifact: 'fakes:echo', "
            f"options: {{path: '{FIXTURES}'}}}}\n"
            "contract:\n  inputs:\n    - {name: msg, type: string}\n"
            f"  outputs:\n    - {{name: msg, type: string, pii: {mode}}}\n")
        with _client(project) as client:
            r = client.post("/v1/models/echo:predict", json={"instances": [{"msg": email}]})
            assert r.status_code == 200 and r.json()["predictions"] == [{"msg": email}]
        logged[mode] = _tail(project)[0]["outputs"]
    assert logged["redact"] == {"msg": "<REDACTED>"}
    assert logged["drop"] == {}


def test_allow_unsafe_pickle_decides_whether_a_pickle_serves(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from fixtures.models import sklearn_iris
    from keelwork.adapters.runtimes.base import UnsafePickleWarning

    for allow in ("false", "true"):
        project = tmp_path / allow
        project.mkdir()
        built = sklearn_iris(project, fmt="joblib")
        (project / "keel.yaml").write_text(
            "service: {name: iris, owners: [t@example.com]}\nmodels:\n  - name: iris\n"
            f"    runtime: sklearn\n    artifact: {Path(built.artifact).name}\n"
            f"    options: {json.dumps(built.options)}\n    allow_unsafe_pickle: {allow}\n")
        if allow == "false":
            with pytest.raises(Exception, match="allow_unsafe_pickle"), _client(project):
                pass
            continue
        with pytest.warns(UnsafePickleWarning), _client(project) as client:
            r = client.post("/v1/models/iris:predict", json={"instances": [built.sample[0]]})
        assert r.status_code == 200, r.text


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_keel_serve_binds_server_host_and_port(tmp_path: Path) -> None:
    host = "127.0.0.2"  # a loopback address other than the default 127.0.0.1
    try:
        port = _free_port(host)
    except OSError:
        pytest.skip("no 127.0.0.2 loopback on this machine")
    project = _project(tmp_path, f"server: {{host: {host}, port: {port}}}\n")
    log = (project / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
                             str(project / "keel.yaml"), "--log-level", "warning",
                             "--no-access-log"], stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline, ready = time.monotonic() + 60, False
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            try:
                ready = httpx.get(f"http://{host}:{port}/v2/health/ready").status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready, (project / "server.log").read_text()[-2000:]
        with pytest.raises(httpx.TransportError):  # not on the default address
            httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
