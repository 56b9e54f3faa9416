"""/metrics counts of the PII redactor: entities found by entity, fields stored whole because
their scan failed (fail closed) by reason; labels never carry the text."""

from __future__ import annotations

from functools import partial

from prometheus_client.parser import text_string_to_metric_families

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.core import pii
from keelwork.core.redaction import WHOLE, Redactor, no_scan
from keelwork.service.redaction import pii_stats

KEY = b"k" * 32


def _redactor(scan: object) -> Redactor:
    return Redactor(inputs={}, outputs={}, text_fields=frozenset({"note"}),
                    text_default="redact", scan=scan, key=KEY)  # type: ignore[arg-type]


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render()[0].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_detections_by_entity_and_fail_closed_by_reason_reach_metrics() -> None:
    redactor = _redactor(pii.scanner(KEY, ["EMAIL_ADDRESS", "PHONE_NUMBER"], max_chars=200))
    metrics = GatewayMetrics()
    metrics.watch_pii(partial(pii_stats, redactor))
    canary = "mail ann.canary@example.org or call +44 20 7946 0958, ann.canary@example.org"
    stored = redactor.instance({"note": canary})
    assert "canary" not in stored["note"]
    assert redactor.instance({"note": "x" * 201}) == {"note": WHOLE}  # too long: fail closed
    got = _samples(metrics)
    assert got[("keelwork_pii_detections_total", (("entity", "EMAIL_ADDRESS"),))] == 2
    assert got[("keelwork_pii_detections_total", (("entity", "PHONE_NUMBER"),))] == 1
    assert got[("keelwork_pii_fail_closed_total", (("reason", "too_long"),))] == 1
    assert got[("keelwork_pii_fail_closed_total", (("reason", "timeout"),))] == 0
    assert got[("keelwork_pii_fail_closed_total", (("reason", "other"),))] == 0
    assert got[("keelwork_pii_scanned_texts_total", ())] == 2
    assert "canary" not in metrics.render()[0].decode()


def test_a_scanner_without_counters_fails_closed_as_other() -> None:
    redactor = _redactor(no_scan)
    assert redactor.instance({"note": "anything"}) == {"note": WHOLE}
    assert pii_stats(redactor) == {"scanned": 0, "found": {}, "failed": {"other": 1}}
