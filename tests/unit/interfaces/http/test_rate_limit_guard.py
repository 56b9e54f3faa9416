"""The model a rate-limited request asked for, read from its path (bounded by the caller)."""

from __future__ import annotations

import pytest

from keelwork.interfaces.http.rate_limit import model_of


@pytest.mark.parametrize(("path", "model"), [
    ("/v1/models/adder:predict", "adder"),
    ("/v1/models/adder@canary:predict", "adder"),
    ("/v2/models/adder/infer", "adder"),
    ("/v2/models/adder/versions/3/infer", "adder"),
    ("/v2/models/adder@3/infer", "adder"),
    ("/v2/models/adder", "adder"),
    ("/v2/health/ready", ""),
])
def test_model_of_a_path(path: str, model: str) -> None:
    assert model_of(path) == model
