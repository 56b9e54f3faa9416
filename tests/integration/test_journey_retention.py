"""A user's journey with retention: keel.yaml keeps predictions 30 days; the running server
deletes older ones by itself, ``keel retention apply`` does it for cron, and the audit log
still verifies."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import func, select
from starlette.testclient import TestClient

from journey import keel
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import ensure_schema, insert_records, predictions
from keelwork.core.predictions import PredictionRecord, new_prediction_id
from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC = """\
service: {{name: kept, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs: [{{name: a, type: float}}, {{name: b, type: integer}}]
{retention}"""


def _old_predictions(url: str, n: int, days: float) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    now = time.time()
    with engine.begin() as conn:
        insert_records(conn, [PredictionRecord(
            id=new_prediction_id(), ts=now - days * 86_400 + i, model="adder", version=1,
            inputs={"a": 1.0, "b": i}, outputs=1.0 + i, latency_ms=1.0) for i in range(n)])
    engine.dispose()


def _logged(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())
    engine.dispose()
    return n


def test_the_server_and_the_cli_delete_what_keel_yaml_keeps_no_longer(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(
        fx=FIXTURES, retention="retention: {predictions_days: 30, interval: 1s}\n"))
    resolved = load_spec(tmp_path / "keel.yaml")
    _old_predictions(resolved.storage_url, 120, days=45)
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        for b in range(5):
            assert client.post("/v1/models/adder:predict",
                               json={"instances": [{"a": 1.0, "b": b}]}).status_code == 200
        deadline = time.monotonic() + 20
        while _logged(resolved.storage_url) != 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _logged(resolved.storage_url) == 5  # the 120 old ones went, today's stayed
    shown = json.loads(keel(tmp_path, "audit", "show", "--action", "retention.apply",
                            "--json").stdout)
    assert shown[-1]["details"]["deleted"] == {"predictions": 120}

    # For cron: count first, then delete and reclaim the space.
    _old_predictions(resolved.storage_url, 50, days=31)
    dry = keel(tmp_path, "retention", "apply", "--dry-run")
    assert "predictions: would delete 50" in dry.stdout
    assert _logged(resolved.storage_url) == 55
    done = json.loads(keel(tmp_path, "retention", "apply", "--vacuum", "--json").stdout)
    assert done["deleted"] == {"predictions": 50}
    assert "VACUUM" in done["vacuumed"]
    assert _logged(resolved.storage_url) == 5
    assert keel(tmp_path, "audit", "verify").returncode == 0


def test_apply_without_a_retention_period_says_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES, retention=""))
    done = keel(tmp_path, "retention", "apply", check=False)
    assert done.returncode == 2
    assert "retention.predictions_days" in done.stderr + done.stdout


def test_a_bad_interval_is_a_spec_error_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC.format(
        fx=FIXTURES, retention="retention: {predictions_days: 30, interval: soon}\n"))
    done = keel(tmp_path, "spec", "validate", check=False)
    assert done.returncode != 0
    assert "retention.interval" in done.stdout + done.stderr
