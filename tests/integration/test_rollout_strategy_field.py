"""``rollout.strategy``: a rollout started without a strategy runs keel.yaml's (a shadow test
here, not the default canary), and an explicit one still wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rollout_project import make_project, open_project, register


def test_the_strategy_of_keel_yaml_is_the_one_a_rollout_runs(tmp_path: Path) -> None:
    spec = make_project(tmp_path)
    spec.write_text(spec.read_text().replace("strategy: canary", "strategy: shadow"))
    service = open_project(spec)
    section = service.resolved.spec.rollout
    try:
        v2 = register(service, "good_twin")
        ops = service.rollouts
        started = ops.start("scorer", v2, section, from_version=1, actor="a")
        assert started.strategy == "shadow"
        ops.act("scorer", "abort", actor="a")
        assert ops.start("scorer", v2, section, from_version=1, strategy="ab",
                         actor="a").strategy == "ab"
    finally:
        asyncio.run(service.close())
