"""keel.yaml's ``explain`` section: defaults, bounds, unknown keys refused with their path."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.errors import SpecError
from keelwork.spec import load_spec

BASE = """\
service: {name: s, owners: [a@example.com]}
models: [{name: m, runtime: python, artifact: "x:y"}]
"""


def _load(tmp_path: Path, extra: str) -> object:
    (tmp_path / "keel.yaml").write_text(BASE + extra)
    return load_spec(tmp_path / "keel.yaml")


def test_defaults_are_bounded(tmp_path: Path) -> None:
    spec = _load(tmp_path, "").spec  # type: ignore[attr-defined]
    assert spec.explain.enabled and spec.explain.max_evaluations == 20_000
    assert spec.explain.budget_per_minute == 600 and spec.explain.background_rows == 100


@pytest.mark.parametrize(("extra", "where"), [
    ("explain: {budget_per_minute: 0}\n", "explain.budget_per_minute"),
    ("explain: {max_evaluations: 5}\n", "explain.max_evaluations"),
    ("explain: {timeout_ms: -1}\n", "explain.timeout_ms"),
    ("explain: {method: kernel}\n", "explain.method"),
])
def test_bad_values_name_their_path_and_line(tmp_path: Path, extra: str, where: str) -> None:
    with pytest.raises(SpecError) as info:
        _load(tmp_path, extra)
    detail = info.value.details[0]
    assert detail.path == where
    assert detail.line == 3
