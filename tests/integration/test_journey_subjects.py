"""A user's journey with a data subject's requests: predictions name their subject
(``X-Subject-Id``); the privacy officer exports and erases one over the admin API and the CLI;
the other subject is untouched and the audit log verifies without naming anyone."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = f"""\
service: {{name: subjects, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{FIXTURES}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
"""


def test_export_and_erase_a_subject_over_http_and_the_cli(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    keel(tmp_path, "spec", "validate")
    admin = keel(tmp_path, "keys", "create", "--scope", "admin", "--name", "dpo").stdout.strip()
    resolved = load_spec(tmp_path / "keel.yaml")
    key = {"Authorization": f"Bearer {admin}"}
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        for who, b in (("alice@example.com", 1), ("alice@example.com", 2),
                       ("bob@example.com", 3)):
            r = client.post("/v1/models/adder:predict", headers={"X-Subject-Id": who},
                            json={"instances": [{"a": 1.0, "b": b}]})
            assert r.status_code == 200, r.text
            pid = r.json()["prediction_ids"][0]
            assert client.post("/v1/feedback", headers=key, json={"labels": [
                {"prediction_id": pid, "label": 1.0 + b}]}).status_code == 200
        body = {"subject": "alice@example.com"}
        assert client.post("/v1/admin/subjects:export", json=body).status_code == 401
        got = client.post("/v1/admin/subjects:export", json=body, headers=key)
        assert got.status_code == 200, got.text
        assert [p["inputs"] for p in got.json()["predictions"]] == [
            {"a": 1.0, "b": 1}, {"a": 1.0, "b": 2}]
        assert [len(p["labels"]) for p in got.json()["predictions"]] == [1, 1]
        missing = client.post("/v1/admin/subjects:erase", json=body, headers=key)
        assert missing.status_code == 422
        assert missing.json()["details"][0]["path"] == "body.reason"
        erased = client.post("/v1/admin/subjects:erase", headers=key,
                             json={**body, "reason": "ticket 41"})
        assert erased.status_code == 200, erased.text
        assert erased.json()["predictions"] == 2
        again = client.post("/v1/admin/subjects:export", json=body, headers=key).json()
        assert again["predictions"] == []
        assert [e["reason"] for e in again["erasures"]] == ["ticket 41"]

    out = tmp_path / "bob.json"
    keel(tmp_path, "export", "--subject", "bob@example.com", "--out", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(json.loads(out.read_text())["predictions"]) == 1
    done = keel(tmp_path, "erase", "--subject", "bob@example.com", "--reason", "ticket 42")
    assert "erased: 1 predictions" in done.stdout
    assert json.loads(keel(tmp_path, "export", "--subject", "bob@example.com").stdout)[
        "predictions"] == []
    assert keel(tmp_path, "audit", "verify").returncode == 0
    shown = keel(tmp_path, "audit", "show", "--action", "subject.erase", "--json").stdout
    assert len(json.loads(shown)) == 2
    assert "bob@example.com" not in shown and "alice@example.com" not in shown
    bad = keel(tmp_path, "erase", "--subject", " ", "--reason", "x", check=False)
    assert bad.returncode == 2 and "subject identifier" in bad.stdout + bad.stderr
