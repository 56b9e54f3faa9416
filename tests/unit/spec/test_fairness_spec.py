"""keel.yaml's ``fairness`` section: what it accepts, and every problem named with its path
and line."""

from __future__ import annotations

import pytest

from keelwork.errors import SpecError
from keelwork.spec.fairness_checks import fairness_positive
from keelwork.spec.loader import parse_spec

BASE = """\
service: {name: s, owners: [a@b.co]}
models: [{name: m, runtime: sklearn}]
contract:
  inputs:
    - {name: age, type: integer}
    - {name: sex, type: string}
  outputs:
    - {name: label, type: category, categories: ["<=50K", ">50K"]}
"""


def _problems(text: str) -> list[tuple[str, str, int | None]]:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return [(d.path, d.rule, d.line) for d in info.value.details]


def test_defaults_and_the_positive_class() -> None:
    spec = parse_spec(BASE + "fairness:\n  protected: [sex]\n")
    f = spec.fairness
    assert f is not None and f.protected == ["sex"]
    assert (f.max_difference, f.min_ratio, f.min_group_size, f.confidence) == (0.1, 0.8, 30,
                                                                               0.95)
    assert f.metrics == ["demographic_parity", "equalized_odds"]
    assert fairness_positive(spec) == ">50K"  # the second category, as scikit-learn orders
    spec = parse_spec(BASE + "fairness:\n  protected: [sex]\n  positive_label: '<=50K'\n")
    assert fairness_positive(spec) == "<=50K"


def test_an_unknown_protected_field_is_named_with_its_line() -> None:
    got = _problems(BASE + "fairness:\n  protected:\n    - sex\n    - race\n")
    assert got == [("fairness.protected[1]", "unknown_protected_field", 12)]
    with pytest.raises(SpecError, match=r"names 'race', which is neither an input of the "
                       r"contract \(inputs: age, sex\) nor in fairness.label_fields"):
        parse_spec(BASE + "fairness:\n  protected: [sex, race]\n")


def test_label_fields_are_protected_fields_sent_with_the_truth() -> None:
    from keelwork.spec.fairness_checks import label_attributes

    spec = parse_spec(BASE + "fairness:\n  protected: [sex, race]\n  label_fields: [race]\n")
    assert label_attributes(spec) == ("race",)
    assert label_attributes(parse_spec(BASE)) == ()
    got = _problems(BASE + "fairness:\n  protected: [sex]\n  label_fields: [race, sex]\n")
    assert [(p, r) for p, r, _ in got] == [
        ("fairness.label_fields[0]", "label_field_unprotected"),
        ("fairness.label_fields[1]", "label_field_taken")]


@pytest.mark.parametrize(("body", "path", "rule"), [
    ("  protected: []\n", "fairness.protected", "too_short"),
    ("  protected: [sex, sex]\n", "fairness.protected", "duplicate_field"),
    ("  protected: [sex]\n  min_ratio: 1.5\n", "fairness.min_ratio", "less_than_equal"),
    ("  protected: [sex]\n  max_difference: 0\n", "fairness.max_difference", "greater_than"),
    ("  protected: [sex]\n  confidence: 1\n", "fairness.confidence", "less_than"),
    ("  protected: [sex]\n  metrics: [calibration]\n", "fairness.metrics[0]", "literal_error"),
    ("  protected: [sex]\n  positive_label: rich\n", "fairness.positive_label",
     "fairness_positive"),
    ("  protected: [sex]\n  thresholds: 1\n", "fairness.thresholds", "extra_forbidden"),
])
def test_bad_values_are_refused(body: str, path: str, rule: str) -> None:
    got = _problems(BASE + "fairness:\n" + body)
    assert [(p, r) for p, r, _ in got] == [(path, rule)]


def test_a_regressor_or_a_gate_without_the_section_is_refused() -> None:
    regressor = BASE.replace("{name: label, type: category, categories: [\"<=50K\", "
                             "\">50K\"]}", "{name: value, type: float}")
    assert [(p, r) for p, r, _ in _problems(regressor + "fairness:\n  protected: [sex]\n")] == [
        ("fairness", "fairness_task")]
    gate = BASE + "rollout:\n  gates: {max_fairness_difference: 0.1}\n"
    assert [(p, r) for p, r, _ in _problems(gate)] == [
        ("rollout.gates.max_fairness_difference", "fairness_missing")]
    parse_spec(gate + "fairness:\n  protected: [sex]\n")


def test_the_docs_example_is_a_valid_spec() -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[3] / "docs" / "fairness.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", page, re.S)
    assert block is not None
    spec = parse_spec("service: {name: s, owners: [a@b.co]}\nmodels: [{name: m, runtime: "
                      "sklearn}]\n" + block.group(1))
    assert spec.fairness is not None and spec.fairness.protected == ["sex", "race"]
    assert spec.rollout.gates.max_fairness_difference == 0.1


@pytest.mark.parametrize("mode", ["redact", "drop"])
def test_a_protected_field_the_log_never_keeps_is_refused(mode: str) -> None:
    """A redacted or dropped protected input is stored as one placeholder (or nothing): every
    row falls in one group, and the fairness gate would wait for two groups forever."""
    text = BASE.replace("{name: sex, type: string}", f"{{name: sex, type: string, pii: {mode}}}")
    assert _problems(text + "fairness:\n  protected: [sex]\n") == [
        ("fairness.protected[0]", "protected_field_hidden", 10)]
    # Pseudonymised values keep the groups apart: accepted.
    kept = BASE.replace("{name: sex, type: string}", "{name: sex, type: string, pii: pseudonymise}")
    assert parse_spec(kept + "fairness:\n  protected: [sex]\n").fairness is not None
