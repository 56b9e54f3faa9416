"""Each per-field rule of ``contract.outputs[]`` applies to what the model answers: one answer
that keeps the rule, one that breaks it, and the rule the output contract names."""

from __future__ import annotations

import math
from typing import Any

import pytest

from keelwork.core.contracts import compile_outputs
from keelwork.spec.contract import ContractSection, FieldSpec

#: keel.yaml field -> (the output field, an answer that keeps it, one that breaks it, rule).
CASES: dict[str, tuple[dict[str, Any], Any, Any, str]] = {
    "name": ({"name": "score", "type": "float"}, {"score": 0.5}, {"other": 0.5}, "required"),
    "type": ({"name": "y", "type": "integer"}, {"y": 3}, {"y": "three"}, "type"),
    "required": ({"name": "y", "type": "float", "required": True}, {"y": 1.0}, {}, "required"),
    "nullable": ({"name": "y", "type": "float", "nullable": False}, {"y": 1.0}, {"y": None},
                 "nullable"),
    "min": ({"name": "p", "type": "float", "min": 0}, {"p": 0.0}, {"p": -0.1}, "min"),
    "max": ({"name": "p", "type": "float", "max": 1}, {"p": 1.0}, {"p": 1.1}, "max"),
    "categories": ({"name": "c", "type": "category", "categories": ["cat", "dog"]},
                   {"c": "dog"}, {"c": "cow"}, "category"),
    "min_length": ({"name": "t", "type": "text", "min_length": 2}, {"t": "ok"}, {"t": "x"},
                   "min_length"),
    "max_length": ({"name": "t", "type": "text", "max_length": 3}, {"t": "abc"}, {"t": "abcd"},
                   "max_length"),
    "shape": ({"name": "v", "type": "tensor", "shape": [2]}, {"v": [1.0, 2.0]},
              {"v": [1.0, 2.0, 3.0]}, "shape"),
    "dtype": ({"name": "v", "type": "tensor", "dtype": "int64"}, {"v": [1, 2]},
              {"v": [1.5, 2.0]}, "dtype"),
    "allow_nan": ({"name": "y", "type": "float", "allow_nan": False}, {"y": 1.0},
                  {"y": math.nan}, "finite"),
}


@pytest.mark.parametrize("field", sorted(CASES))
def test_each_output_rule_refuses_what_breaks_it(field: str) -> None:
    declared, good, bad, rule = CASES[field]
    check = compile_outputs(ContractSection(outputs=[FieldSpec(**declared)]))
    assert check is not None
    assert check.validate_batch([good]) == []
    assert rule in [d.rule for d in check.validate_batch([bad])]


def test_allow_nan_true_lets_nan_through() -> None:
    check = compile_outputs(ContractSection(outputs=[
        FieldSpec(name="y", type="float", allow_nan=True)]))
    assert check is not None and check.validate_batch([{"y": math.nan}]) == []
