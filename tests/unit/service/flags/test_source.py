"""The flag reloader during a store outage: flags stay, one line as it starts and ends."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from keelwork.errors import StoreError
from keelwork.service.flags.source import FlagSource


class Store:
    def __init__(self) -> None:
        self.down = False
        self.rev = 1

    def revision(self) -> int:
        if self.down:
            raise StoreError("The flag store failed: connection refused")
        return self.rev

    def bodies(self) -> list[dict[str, Any]]:
        return []


def test_a_store_outage_is_logged_once_and_its_end_once(
        caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    source = FlagSource([], store)  # type: ignore[arg-type]
    source.reload()
    caplog.set_level(logging.INFO, logger="keelwork.flags")
    store.down = True
    for _ in range(50):  # 50 s of polls at the default 1 s
        assert source.check() is False
    assert source.outage.degraded and source.reload_failures == 50
    store.down = False
    store.rev = 2
    assert source.check() is True
    assert source.check() is False
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "flag reloader: The flag store failed: connection refused" in lines[0]
    assert "working again" in lines[1] and "50 failed attempts" in lines[1]
    assert not source.outage.degraded
