"""What keel.yaml's guards need from the rest of the spec, checked at ``keel spec validate``.

The out-of-distribution guard is fitted on the reference data (``monitoring.reference``) over
the contract's numeric and category inputs: without either there is nothing to fit.
"""

from __future__ import annotations

from keelwork.spec.model import KeelSpec, ood_settings

#: ``(path, rule, got, message)``, as :func:`keelwork.spec.slos.slo_problems` reports them.
Problem = tuple[tuple[str | int, ...], str, object, str]

#: Contract types the out-of-distribution guard looks at.
OOD_TYPES = ("float", "integer", "category")


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
    return out


__all__ = ["OOD_TYPES", "guard_problems"]
