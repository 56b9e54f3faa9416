"""The output contract: answers checked like inputs, bare values as the one declared field."""

from __future__ import annotations

from keelwork.core.contracts import compile_outputs
from keelwork.spec.contract import ContractSection, FieldSpec

CLASSES = FieldSpec(name="label", type="category", categories=["class_0", "class_1", "class_2"])


def test_no_outputs_no_validator() -> None:
    assert compile_outputs(ContractSection()) is None


def test_bare_answers_are_the_one_declared_field() -> None:
    check = compile_outputs(ContractSection(outputs=[CLASSES]))
    assert check is not None
    assert check.validate_batch(["class_0", "class_2"]) == []
    details = check.validate_batch(["class_1", 1, 2])
    assert [(d.path, d.rule, d.got) for d in details] == [
        ("predictions[1].label", "type", 1), ("predictions[2].label", "type", 2)]


def test_records_and_ranges() -> None:
    check = compile_outputs(ContractSection(outputs=[
        FieldSpec(name="label", type="string"),
        FieldSpec(name="score", type="float", min=0, max=1)]))
    assert check is not None
    assert check.validate_batch([{"label": "a", "score": 0.3, "extra": 1}, ["b", 1.0]]) == []
    details = check.validate_batch([{"label": "a", "score": 1.7}, {"score": 0.1}])
    assert [(d.path, d.rule) for d in details] == [("predictions[0].score", "max"),
                                                    ("predictions[1].label", "required")]


def test_a_regressor_answering_text() -> None:
    check = compile_outputs(ContractSection(outputs=[FieldSpec(name="y", type="float")]))
    assert check is not None
    assert check.validate_batch([151.2, 3]) == []
    assert [d.rule for d in check.validate_batch(["bad"])] == ["type"]
