"""The labelled fold's shortcut for probability rows gives exactly the columns
``proba_columns`` gives, whatever the row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keelwork.core.monitors.windows import OutputSchema, proba_columns
from keelwork.service.monitoring.labelled import _proba_columns

ROWS: list[Any] = [
    [0.25, 0.75], [1.0, 0.0], [0.5, float("nan")], [0.2, float("inf")], [1, 0], (0.4, 0.6),
    [0.1, 0.2, 0.7], [0.3], {"no": 0.1, "yes": 0.9}, {"yes": 0.6}, None, "0.5", [True, False],
    [np.float64(0.3), 0.7], [],
]


@pytest.mark.parametrize("schema", [
    OutputSchema(classes=("no", "yes")),
    OutputSchema(classes=("no", "yes"), positive="no"),
    OutputSchema(classes=("a", "b", "c")),
    OutputSchema(classes=("x", "x")),
    OutputSchema(classes=None),
])
def test_the_shortcut_equals_proba_columns(schema: OutputSchema) -> None:
    fast = _proba_columns(schema)
    for row in ROWS:
        want = proba_columns(row, schema)
        got = fast(row)
        assert got.keys() == want.keys(), row
        for k, v in want.items():
            assert got[k] == v or (v != v and got[k] != got[k]), (row, k)
    rng = np.random.default_rng(0)
    for _ in range(200):
        row = [float(v) for v in rng.dirichlet(np.ones(len(schema.classes or (1, 1))))]
        assert fast(row) == proba_columns(row, schema)
