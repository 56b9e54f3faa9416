"""The explain budget (instances per minute) and the explanation table's bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.explanation_store import PRUNE_EVERY, ExplanationStore
from keelwork.service.explain import Budget


def test_budget_refuses_past_its_minute_and_refills() -> None:
    now = [0.0]
    budget = Budget(60, clock=lambda: now[0])
    assert budget.take(50) is None
    wait = budget.take(20)
    assert wait == pytest.approx(10.0)  # 10 missing at one per second
    now[0] = 10.0
    assert budget.take(20) is None
    assert budget.take(1) is not None


def test_the_table_keeps_at_most_its_bound(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    store = ExplanationStore(engine, max_rows=50)
    store.ensure_schema()
    body = {"method": "linear", "attributions": {"a": 1.0}}
    for start in range(0, 3 * PRUNE_EVERY, 10):
        store.put([(f"p{i:05d}", "m", 1, body) for i in range(start, start + 10)])
    assert store.count() <= 50 + PRUNE_EVERY
    store.prune()
    assert store.count() <= 50
    newest = f"p{3 * PRUNE_EVERY - 1:05d}"
    got = store.get(newest)
    assert got is not None and got["attributions"] == {"a": 1.0} and got["model"] == "m"
    assert store.get("p00000") is None
    engine.dispose()


def test_the_server_bounds_its_table_by_explain_max_stored(tmp_path: Path) -> None:
    from typing import Any, cast

    from keelwork.service.explain import open_explainer
    from keelwork.spec import load_spec

    (tmp_path / "keel.yaml").write_text(
        "service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'x:y'}]\n"
        "explain: {max_stored: 7, budget_per_minute: 30}\n")
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    explainer = open_explainer(load_spec(tmp_path / "keel.yaml"), cast(Any, None), engine)
    assert explainer.store.max_rows == 7
    assert explainer.budget.capacity == 30
    assert explainer.store.count() == 0  # the table exists
    engine.dispose()
