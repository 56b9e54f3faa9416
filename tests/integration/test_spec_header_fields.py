"""keel.yaml fields read from each request, proved over HTTP: ``service.tenant_header``,
``flags[].sticky_header``, ``contract.subject_field`` and ``guards.pii_redaction.model_sees``.

Each test serves a fresh project, sends what a client would, and checks the behaviour the field
promises in the prediction log (``keel log tail``) or in the answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from journey import keel
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.registration import register_model
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = """\
service: {{name: fields, owners: [t@example.com], tenant_header: x-org}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
    timeout_ms: 10000  # a loaded CI machine: the first call of version 2 waited past 1 s
contract:
  inputs:
    - {{name: a, type: float}}
    - {{name: b, type: integer}}
    - {{name: user, type: string, required: false}}
  subject_field: user
flags:
  - name: org-and-half
    model: adder
    sticky_header: x-account
    rules:
      - {{tenants: [acme], serve: "2"}}
      - {{percentage: 50, serve: "2"}}
"""


def _tail(project: Path) -> list[dict[str, Any]]:
    out = keel(project, "log", "tail", "--json", "-n", "500").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _served(project: Path) -> TestClient:
    resolved = load_spec(project / "keel.yaml")
    with open_registry(project, resolved.storage_url) as registry:
        for aliases in (["champion"], []):  # version 1 answers unless a flag says 2
            register_model(registry, "adder", "fakes:total", "python",
                           options={"path": str(FIXTURES)}, aliases=aliases)
    return TestClient(build_server_app(resolved, freeze_gc=False, monitor_interval_s=0))


def test_tenant_sticky_and_subject_come_from_the_fields_keel_yaml_names(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    body = {"instances": [{"a": 1.0, "b": 2, "user": "u-17"}]}
    with _served(tmp_path) as client:
        def version(**headers: str) -> str:
            r = client.post("/v1/models/adder:predict", json=body, headers=headers)
            assert r.status_code == 200, r.text
            return r.headers["x-model-version"]

        # service.tenant_header: the tenant is read from x-org, not from the default header
        assert version(**{"x-org": "acme", "x-account": "fixed"}) == "2"
        default_header = {version(**{"x-tenant-id": "acme", "x-account": a})
                          for a in map(str, range(40))}
        assert default_header == {"1", "2"}  # not the acme rule: the percentage split
        # flags[].sticky_header: buckets follow x-account, and stay put
        picks = {a: version(**{"x-account": a}) for a in map(str, range(60))}
        assert 15 < sum(v == "2" for v in picks.values()) < 45
        assert picks == {a: version(**{"x-account": a}) for a in map(str, range(60))}
        # ...while the default sticky header does not choose the bucket
        ignored = {version(**{"x-keel-user": u, "x-account": "same"}) for u in map(str, range(30))}
        assert len(ignored) == 1
    rows = _tail(tmp_path)
    assert {r["tenant"] for r in rows} >= {"acme"}
    # contract.subject_field: each record's subject is the instance's `user`
    assert {r["subject_id"] for r in rows} == {"u-17"}
    exported = tmp_path / "u17.json"
    keel(tmp_path, "export", "--subject", "u-17", "--out", str(exported))
    assert "u-17" in exported.read_text()


MODEL_SEES = """\
service: {{name: private, owners: [t@example.com]}}
models:
  - name: moody
    runtime: python
    artifact: "pii_models:moody"
    options: {{path: "{fx}"}}
contract:
  inputs:
    - {{name: note, type: text, max_length: 500}}
    - {{name: x, type: float}}
guards:
  pii_redaction: {{model_sees: {sees}}}
"""


def test_model_sees_redacted_text_only_when_keel_yaml_says_so(tmp_path: Path) -> None:
    """``guards.pii_redaction.model_sees``: the model (it answers the length of ``note``) gets
    the original by default and the redacted text with ``redacted``; the log holds the
    redacted text either way."""
    note = "write to zz.person@example.org please"
    lengths = {}
    for sees in ("original", "redacted"):
        project = tmp_path / sees
        project.mkdir()
        (project / "keel.yaml").write_text(MODEL_SEES.format(fx=FIXTURES, sees=sees))
        with TestClient(build_server_app(load_spec(project / "keel.yaml"),
                                         freeze_gc=False)) as client:
            r = client.post("/v1/models/moody:predict",
                            json={"instances": [{"note": note, "x": 1.0}]})
            assert r.status_code == 200, r.text
            lengths[sees] = r.json()["predictions"][0]
        stored = _tail(project)[0]["inputs"]["note"]
        assert "zz.person" not in stored and "example.org" not in stored
    assert lengths["original"] == len(note)
    assert lengths["redacted"] != len(note)
