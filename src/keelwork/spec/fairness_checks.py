"""What keel.yaml's ``fairness`` section needs from the rest of the spec, checked at ``keel spec
validate``: its protected fields are inputs of the contract, the model is a classifier with a
favourable class, and the rollout's fairness gate has a section to read.
"""

from __future__ import annotations

from keelwork.spec.model import KeelSpec, output_task
from keelwork.spec.quality_slos import binary_positive

#: ``(path, rule, got, message)``, as :func:`keelwork.spec.slos.slo_problems` reports them.
Problem = tuple[tuple[str | int, ...], str, object, str]


def label_attributes(spec: KeelSpec) -> tuple[str, ...]:
    """The fields a label object may carry beside the outputs (``fairness.label_fields``)."""
    return tuple(spec.fairness.label_fields) if spec.fairness is not None else ()


def fairness_positive(spec: KeelSpec) -> str | None:
    """The positive class fairness counts: ``fairness.positive_label``, else the monitoring
    one, else the second of the output's two categories (None when none says)."""
    f = spec.fairness
    if f is not None and f.positive_label is not None:
        return f.positive_label
    return binary_positive(spec.contract.outputs, spec.monitoring.labels.positive)


def fairness_problems(spec: KeelSpec) -> list[Problem]:
    """What keeps ``fairness`` (and the fairness rollout gate) from being enforced."""
    out: list[Problem] = []
    f = spec.fairness
    gate = spec.rollout.gates.max_fairness_difference
    if f is None:
        if gate is not None:
            out.append((("rollout", "gates", "max_fairness_difference"), "fairness_missing",
                        gate, "the fairness gate judges the protected fields of the "
                        "fairness section: add one (fairness.protected)"))
        return out
    inputs = [i.name for i in spec.contract.inputs]
    for i, name in enumerate(f.protected):
        if name not in inputs and name not in f.label_fields:
            shown = ", ".join(inputs) or "none"
            out.append((("fairness", "protected", i), "unknown_protected_field", name,
                        f"fairness.protected[{i}] names {name!r}, which is neither an input "
                        f"of the contract (inputs: {shown}) nor in fairness.label_fields; "
                        "declare it in one of them"))
    hidden = {i.name: i.pii for i in spec.contract.inputs if i.pii in ("redact", "drop")}
    for i, name in enumerate(f.protected):
        if name in hidden and name not in f.label_fields:
            out.append((("fairness", "protected", i), "protected_field_hidden", name,
                        f"fairness.protected[{i}] names {name!r}, whose contract pii mode is "
                        f"{hidden[name]}: the log keeps no group of it to compare; use pii: "
                        "pseudonymise (groups stay apart, values do not show) or send it "
                        "with the labels (fairness.label_fields)"))
    outputs = [o.name for o in spec.contract.outputs]
    for i, name in enumerate(f.label_fields):
        at: tuple[str | int, ...] = ("fairness", "label_fields", i)
        if name not in f.protected:
            out.append((at, "label_field_unprotected", name,
                        f"fairness.label_fields[{i}] names {name!r}, which is not in "
                        "fairness.protected: nothing would read it"))
        elif name in inputs or name in outputs or name in ("label", "value", "y"):
            out.append((at, "label_field_taken", name,
                        f"fairness.label_fields[{i}] names {name!r}, which is already an "
                        "input, an output or a label key; a label field needs its own name"))
    task = output_task(spec.contract)
    if task != "classification":
        says = f"says it is a {task} model" if task else "does not say"
        out.append((("fairness",), "fairness_task", task,
                    f"fairness compares a classifier's selections, and the output contract "
                    f"{says} (declare a category, string or boolean output)"))
    elif f.positive_label is not None and (cats := _categories(spec)) and (
            f.positive_label not in cats):
        out.append((("fairness", "positive_label"), "fairness_positive", f.positive_label,
                    f"fairness.positive_label must be one of the output's categories "
                    f"({', '.join(cats)}); got {f.positive_label!r}"))
    elif fairness_positive(spec) is None:
        out.append((("fairness", "positive_label"), "fairness_positive", None,
                    "fairness needs the favourable class: set fairness.positive_label (or "
                    "monitoring.labels.positive, or give the output its two categories)"))
    return out


def _categories(spec: KeelSpec) -> list[str]:
    outputs = spec.contract.outputs
    cats = outputs[0].categories if outputs else None
    return [str(c) for c in cats] if cats else []


__all__ = ["fairness_positive", "fairness_problems", "label_attributes"]
