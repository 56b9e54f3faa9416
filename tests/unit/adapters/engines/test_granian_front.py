"""The granian engine's adapter (``keel serve --engine granian``): granian's options and the
missing-extra hint."""

from __future__ import annotations

import sys

import pytest

from keelwork.adapters.engines.granian_front import GranianConfig, require_granian, server_options
from keelwork.errors import MissingExtraError


def test_one_worker_one_thread_on_the_rsgi_app_without_an_access_log() -> None:
    options = server_options(GranianConfig(target="pkg.mod:app", host="127.0.0.1", port=8123))
    assert options == {"target": "pkg.mod:app", "address": "127.0.0.1", "port": 8123,
                       "workers": 1, "runtime_threads": 1, "log_level": "warning",
                       "log_access": False}


def test_connections_are_bounded_when_asked() -> None:
    """granian's backpressure: a connection holds its permit until it closes, so it bounds
    the connections held, not the requests (the live check: test_hostile_clients)."""
    options = server_options(GranianConfig(target="pkg.mod:app", host="127.0.0.1", port=8123,
                                           max_connections=64))
    assert options["backpressure"] == 64


def test_a_request_head_deadline_makes_the_front_http1_with_granians_timeout() -> None:
    """guards.header_read_timeout_s: granian's HTTP/1 header_read_timeout, in ms. HTTP/1 only,
    because in `auto` mode a silent connection is held before any deadline starts."""
    options = server_options(GranianConfig(target="pkg.mod:app", host="127.0.0.1", port=8123,
                                           header_read_timeout_s=2.5))
    assert options["http"] == "1" and options["header_read_timeout_ms"] == 2500


def test_without_granian_the_engine_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "granian", None)
    with pytest.raises(MissingExtraError, match=r"keelwork\[granian\]"):
        require_granian()
