"""What keel.yaml's guards need from the rest of the spec, checked at ``keel spec validate``.

The out-of-distribution guard is fitted on the reference data (``monitoring.reference``) over
the contract's numeric and category inputs: without either there is nothing to fit. The
prompt-injection guard scans the contract's text inputs (or the ones it names): each must be
one, and its ``review`` action needs a review queue.
"""

from __future__ import annotations

from keelwork.spec.model import KeelSpec, injection_settings, ood_settings

#: ``(path, rule, got, message)``, as :func:`keelwork.spec.slos.slo_problems` reports them.
Problem = tuple[tuple[str | int, ...], str, object, str]

#: Contract types the out-of-distribution guard looks at.
OOD_TYPES = ("float", "integer", "category")
#: Contract types the prompt-injection guard scans.
TEXT_TYPES = ("text", "string")


def guard_problems(spec: KeelSpec) -> list[Problem]:
    """The guards keel.yaml turns on that the rest of the spec cannot support."""
    out: list[Problem] = []
    if ood_settings(spec.guards) is not None:
        path: tuple[str | int, ...] = ("guards", "out_of_distribution")
        if spec.monitoring.reference is None:
            out.append((path, "ood_needs_reference", None,
                        "the out-of-distribution guard is fitted on the reference data: set "
                        "monitoring.reference (a CSV, Parquet or JSON-lines file)"))
        if not any(f.type in OOD_TYPES for f in spec.contract.inputs):
            out.append((path, "ood_needs_inputs", None,
                        "the out-of-distribution guard looks at the contract's float, integer "
                        "and category inputs: declare them in contract.inputs"))
    return out + _injection_problems(spec)


def injection_fields(spec: KeelSpec) -> list[str]:
    """The contract inputs ``guards.prompt_injection`` scans (its ``fields``, or every text
    input)."""
    settings = injection_settings(spec.guards)
    if settings is None:
        return []
    if settings.fields is not None:
        return list(settings.fields)
    return [f.name for f in spec.contract.inputs if f.type in TEXT_TYPES]


def _injection_problems(spec: KeelSpec) -> list[Problem]:
    settings = injection_settings(spec.guards)
    if settings is None:
        return []
    out: list[Problem] = []
    path: tuple[str | int, ...] = ("guards", "prompt_injection")
    types = {f.name: f.type for f in spec.contract.inputs}
    if settings.fields is None and not injection_fields(spec):
        out.append((path, "injection_needs_text", None,
                    "the prompt-injection guard scans the contract's text inputs: declare "
                    "one (type: text or string) in contract.inputs, or name fields"))
    for i, name in enumerate(settings.fields or []):
        if name not in types:
            out.append(((*path, "fields", i), "unknown_field", name,
                        f"no contract input is named {name!r}; inputs: "
                        f"{', '.join(types) or 'none'}"))
        elif types[name] not in TEXT_TYPES:
            out.append(((*path, "fields", i), "not_text", name,
                        f"the input {name!r} is of type {types[name]!r}; the guard scans "
                        "text and string inputs"))
    if settings.canary_field is not None and settings.canary_field in types:
        out.append(((*path, "canary_field"), "canary_field_taken", settings.canary_field,
                    f"{settings.canary_field!r} is a contract input: the canary needs a key "
                    "of its own"))
    if settings.action == "review" and spec.review is None:
        out.append(((*path, "action"), "review_needs_queue", "review",
                    "action 'review' sends flagged predictions to the review queue: add a "
                    "review section"))
    return out


__all__ = ["OOD_TYPES", "TEXT_TYPES", "guard_problems", "injection_fields"]
