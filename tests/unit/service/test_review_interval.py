"""``review.interval``: the server's review loop fills the queue once per interval."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from keelwork.service import review
from keelwork.spec import load_spec

SPEC = """\
service: {{name: tickets, owners: [t@example.com]}}
models:
  - {{name: triage, runtime: python, artifact: "a:b"}}
review: {{budget_per_day: 50, interval: {interval}}}
"""


def _fills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: str,
           seconds: float) -> int:
    (tmp_path / "keel.yaml").write_text(SPEC.format(interval=interval))
    resolved = load_spec(tmp_path / "keel.yaml")
    calls: list[float] = []

    def fill(*args: Any, **kwargs: Any) -> Any:
        calls.append(1.0)
        return review.FillReport()

    monkeypatch.setattr(review, "fill", fill)

    async def run() -> None:
        stop = asyncio.Event()
        engine: Any = None  # the stand-in fill never touches the store
        task = asyncio.create_task(review.review_loop(resolved, engine, stop=stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task

    asyncio.run(run())
    return len(calls)


def test_the_loop_fills_once_per_interval(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "often").mkdir()
    (tmp_path / "hourly").mkdir()
    assert 2 <= _fills(tmp_path / "often", monkeypatch, "1s", 2.5) <= 3  # at 0, 1 (and 2) s
    assert _fills(tmp_path / "hourly", monkeypatch, "1h", 2.5) == 1  # at the start only
