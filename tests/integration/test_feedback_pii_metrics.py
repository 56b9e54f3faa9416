"""What the feedback route's scrubber finds is counted on /metrics with the rest: a label
record that carries an e-mail address in place of a prediction id (no prediction was made)
moves ``keelwork_pii_detections_total{entity="EMAIL_ADDRESS"}``, and the address is not in the
scrape."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec
from live_server import ADDER_SPEC, FIXTURES

EMAIL = "zzfeedback.person@example.org"
SPEC = ADDER_SPEC.format(fx=FIXTURES) + """\
guards:
  pii_redaction: true
"""


def _emails(body: str) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "keelwork_pii_detections_total" \
                    and sample.labels.get("entity") == "EMAIL_ADDRESS":
                return sample.value
    return 0.0


def test_feedback_detections_reach_metrics(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    with TestClient(build_server_app(load_spec(tmp_path / "keel.yaml"), freeze_gc=False)) as c:
        before = _emails(c.get("/metrics").text)
        r = c.post("/v1/feedback", json={"labels": [{"prediction_id": EMAIL, "label": 1.0}]})
        assert r.status_code in (200, 422), r.text
        assert EMAIL not in r.text
        scraped = c.get("/metrics").text
    assert _emails(scraped) >= before + 1
    assert EMAIL not in scraped
