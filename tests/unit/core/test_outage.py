"""Outage: one message as failures start, one as they end, the state in between."""

from __future__ import annotations

from keelwork.core.outage import Outage


def test_one_message_per_outage_and_one_on_recovery() -> None:
    o = Outage("rollout controller")
    assert o.succeeded(0.0) is None and not o.degraded
    said = [o.failed(ConnectionError("database is locked\nmore"), 10.0 + i / 4)
            for i in range(40)]
    assert [m for m in said if m] == [
        "rollout controller: database is locked -- it keeps what it has and retries, "
        "quietly until it works again"]
    assert o.as_dict() == {"degraded": True, "since": 10.0, "failures": 40,
                           "last_error": "database is locked"}
    back = o.succeeded(25.0)
    assert back == "rollout controller: working again after 15.0 s (40 failed attempts)"
    assert o.succeeded(26.0) is None
    assert o.as_dict() == {"degraded": False, "since": None, "failures": 0, "last_error": None}
    assert o.failed("again", 30.0) is not None  # a second outage is a new message
