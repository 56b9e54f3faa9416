"""API keys on a real `keel serve`, on every engine (one uvicorn process; Ray Serve's two
replicas on PostgreSQL; ``--engine granian``, predict on its fast port and the admin routes on
keelwork's app beside it): keys made with `keel keys create` open predict on every process, a
request without one is a 401, an admin route needs the admin scope, and a key revoked over
HTTP is refused by every process within the key cache's bound (5 s)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from journey import keel
from live_server import FIXTURES, engine_spec, served

SPEC = """\
service: {{name: keyed-live, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
guards: {{require_api_key: true}}
"""
BODY = {"instances": [{"a": 1.0, "b": 2}]}
#: ApiKeyStore.cache_seconds, plus slack for a loaded machine.
REVOKED_WITHIN_S = 5.0 + 3.0


def _key(project: Path, scope: str) -> dict[str, str]:
    made = json.loads(keel(project, "keys", "create", "--scope", scope, "--name",
                           f"{scope}-key", "--json").stdout)
    return {"x-api-key": made["key"], "id": made["id"]}


def test_keys_guard_every_process_and_a_revocation_reaches_them_all(
        tmp_path: Path, serve_engine: tuple[str, str | None]) -> None:
    engine, url = serve_engine
    (tmp_path / "keel.yaml").write_text(engine_spec(SPEC.format(fx=FIXTURES), engine, url))
    predict, admin = _key(tmp_path, "predict"), _key(tmp_path, "admin")
    key_id = predict.pop("id")
    admin.pop("id")
    with served(tmp_path, engine) as where:
        base = where.app

        def post(headers: dict[str, str]) -> httpx.Response:  # a fresh connection each time
            return httpx.post(f"{where.fast}/v1/models/adder:predict", json=BODY,
                              headers=headers, timeout=10)

        bare = post({})
        assert bare.status_code == 401, bare.text
        assert key_id not in bare.text
        processes = set()
        for _ in range(16):  # on Ray, spread over both replicas: each verifies (and caches) it
            r = post(predict)
            assert r.status_code == 200, r.text
            processes.add(r.headers.get("x-keel-replica", "one"))
        assert len(processes) == (2 if engine == "ray" else 1), processes
        listed = httpx.get(f"{base}/v1/admin/keys", headers=predict, timeout=10)
        assert listed.status_code == 403, listed.text
        revoked = httpx.delete(f"{base}/v1/admin/keys/{key_id}", headers=admin, timeout=10)
        assert revoked.status_code == 200 and revoked.json()["active"] is False, revoked.text
        revoked_at = time.monotonic()
        # Every process refuses it within the bound: each of them has refused it (on Ray the
        # router may send many requests in a row to one replica, so a run of refusals alone
        # does not show that the other refuses), and 8 refusals in a row on fresh connections.
        row = 0
        refusers: set[str] = set()
        while row < 8 or refusers != processes:
            assert time.monotonic() - revoked_at < REVOKED_WITHIN_S, \
                f"a process kept serving a revoked key: only {refusers} of {processes} refused"
            r = post(predict)
            if r.status_code == 401:
                row += 1
                refusers.add(r.headers.get("x-keel-replica", "one"))
            else:
                row = 0
        assert post(admin).status_code == 200  # admin implies predict
        # granian: keelwork's app beside the fast port refuses it too (it serves predict too)
        beside = httpx.post(f"{base}/v1/models/adder:predict", json=BODY, headers=predict,
                            timeout=10)
        assert beside.status_code == 401, beside.text
