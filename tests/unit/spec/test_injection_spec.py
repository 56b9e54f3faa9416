"""keel.yaml's guards.prompt_injection: its forms, and the errors that name path and line."""

from __future__ import annotations

import pytest

from keelwork.errors import SpecError
from keelwork.spec.guards import injection_fields
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import injection_settings

HEAD = ("service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
        "contract:\n"
        "  inputs: [{name: prompt, type: text}, {name: note, type: string},"
        " {name: age, type: integer}]\n")


def _problems(guards: str, extra: str = "") -> list[tuple[str, str, int | None]]:
    with pytest.raises(SpecError) as err:
        parse_spec(HEAD + "guards:\n  prompt_injection: " + guards + "\n" + extra, env={})
    return [(d.path, d.rule, d.line) for d in err.value.details]


def test_true_is_flag_on_every_text_input_with_the_model_s_threshold() -> None:
    spec = parse_spec(HEAD + "guards: {prompt_injection: true}\n", env={})
    settings = injection_settings(spec.guards)
    assert settings is not None
    assert (settings.action, settings.threshold, settings.fails_closed) == ("flag", None, False)
    assert injection_fields(spec) == ["prompt", "note"]


def test_reject_fails_closed_unless_told_otherwise() -> None:
    spec = parse_spec(HEAD + "guards: {prompt_injection: {action: reject, threshold: 0.8, "
                      "fields: [prompt]}}\n", env={})
    settings = injection_settings(spec.guards)
    assert settings is not None and settings.fails_closed
    assert injection_fields(spec) == ["prompt"]
    spec = parse_spec(HEAD + "guards: {prompt_injection: {action: reject, on_error: open}}\n",
                      env={})
    settings = injection_settings(spec.guards)
    assert settings is not None and not settings.fails_closed


def test_off_is_none() -> None:
    spec = parse_spec(HEAD + "guards: {prompt_injection: false}\n", env={})
    assert injection_settings(spec.guards) is None
    assert injection_fields(spec) == []


@pytest.mark.parametrize(("guards", "path", "rule"), [
    ("{action: block}", "guards.prompt_injection.action", "literal_error"),
    ("{threshold: 1.5}", "guards.prompt_injection.threshold", "less_than"),
    ("{on_error: maybe}", "guards.prompt_injection.on_error", "literal_error"),
    ("{fields: [nope]}", "guards.prompt_injection.fields[0]", "unknown_field"),
    ("{fields: [prompt, age]}", "guards.prompt_injection.fields[1]", "not_text"),
    ("{action: review}", "guards.prompt_injection.action", "review_needs_queue"),
    ("{treshold: 0.5}", "guards.prompt_injection.treshold", "extra_forbidden"),
    ("{canary_field: prompt}", "guards.prompt_injection.canary_field", "canary_field_taken"),
    ("{canary_field: 'a b'}", "guards.prompt_injection.canary_field", "string_pattern_mismatch"),
])
def test_bad_settings_are_refused_with_path_and_line(guards: str, path: str, rule: str) -> None:
    problems = _problems(guards)
    assert [(p, r) for p, r, _ in problems] == [(path, rule)]
    assert problems[0][2] == 6


def test_a_contract_without_text_inputs_is_refused() -> None:
    text = ("service: {name: s, owners: [a@example.com]}\n"
            "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
            "contract: {inputs: [{name: age, type: integer}]}\n"
            "guards: {prompt_injection: true}\n")
    with pytest.raises(SpecError) as err:
        parse_spec(text, env={})
    assert [(d.path, d.rule) for d in err.value.details] == [
        ("guards.prompt_injection", "injection_needs_text")]


def test_review_action_with_a_review_section_is_accepted() -> None:
    spec = parse_spec(HEAD + "guards: {prompt_injection: {action: review}}\n"
                      "review: {budget_per_day: 10}\n", env={})
    assert spec.review is not None
