"""Labels checked against the output contract."""

from __future__ import annotations

from keelwork.core.label_check import LabelChecker
from keelwork.spec.contract import FieldSpec

CLASSIFIER = [FieldSpec(name="label", type="category", categories=["bad", "good"]),
              FieldSpec(name="score", type="float", min=0, max=1)]


def test_plain_labels_are_checked_against_the_first_output() -> None:
    problems = LabelChecker(CLASSIFIER).check(["purple", 1, "good", None, True])
    assert [(p.path, p.rule, p.got) for p in problems] == [
        ("labels[0].label", "category", "purple"), ("labels[1].label", "type", 1),
        ("labels[4].label", "type", True)]
    assert all("'bad', 'good'" in p.message and "output 'label'" in p.message
               for p in problems)


def test_object_labels_name_outputs() -> None:
    problems = LabelChecker(CLASSIFIER).check([{"label": "bad", "score": 3.0},
                                               {"score": "x"}, {"colour": 1}])
    assert [(p.path, p.rule) for p in problems] == [
        ("labels[1].label.score", "type"), ("labels[2].label.colour", "extra_field")]
    assert "label, score" in problems[1].message


def test_numbers_for_a_regressor_and_no_outputs_means_no_check() -> None:
    checker = LabelChecker([FieldSpec(name="value", type="float", min=0)])
    assert [p.rule for p in checker.check(["abc", -3.5, 2, float("nan")])] == ["type",
                                                                            "finite"]
    assert not LabelChecker([]).active
    assert LabelChecker([]).check(["anything"]) == []


def test_a_label_object_may_carry_the_protected_label_fields() -> None:
    from keelwork.spec.contract import FieldSpec

    outputs = [FieldSpec(name="label", type="category", categories=["bad", "good"])]
    checker = LabelChecker(outputs, attributes=["race"])
    assert checker.check([{"label": "good", "race": "Black"}, "bad",
                          {"label": "bad", "race": None}]) == []
    problems = checker.check([{"label": "good", "race": ["a"]},
                              {"label": "good", "age": 3}])
    assert [(d.path, d.rule) for d in problems] == [("labels[0].label.race", "type"),
                                                    ("labels[1].label.age", "extra_field")]
    # without the attribute, the field is refused as before
    assert [d.rule for d in LabelChecker(outputs).check([{"label": "good", "race": "x"}])] == [
        "extra_field"]
