"""keel.yaml's ``slos.quality``: SLOs on what the models answer, not on how the server serves.

Each item names a metric counted in good and bad events from the prediction log and the
labels, or (drift) from the monitoring results ``keel serve`` stores
(:mod:`keelwork.core.slo.quality`); the server evaluates them itself
(:mod:`keelwork.service.slo_watch`), Prometheus cannot (it sees no label). What the item alone
decides is checked here (the metric, the range of its objective, which fields it takes); what
needs the rest of keel.yaml (the model, the contract's fields and task, the positive class, the
monitoring reference and windows) is :func:`quality_problems`, called at ``keel spec
validate``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator
from pydantic_core import PydanticCustomError

from keelwork.spec.section import Section, check_name
from keelwork.spec.slo_tier import SloTier

#: The metrics a quality SLO may name, with what its objective is.
QUALITY_METRICS: dict[str, str] = {
    "accuracy": "the least share of labelled answers that are right",
    "f1": "the least F1 of labelled answers (binary classifiers: the positive class)",
    "mae": "the largest mean absolute error of labelled answers, in the target's unit",
    "violation_rate": "the largest share of requests the input contract refuses",
    "null_rate": "the largest share of null input values (of 'feature', or of every input)",
    "label_coverage": "the least share of predictions labelled within "
                      "monitoring.labels.expected_delay",
    "drift": "the largest share of predictions served in time slices where 'feature' "
             "drifted from the monitoring reference",
}
#: Metrics judged against labels: their windows end ``monitoring.labels.expected_delay`` ago.
LABEL_METRICS = ("accuracy", "f1", "mae", "label_coverage")
#: What ``feature`` may name for metric drift besides an input: the model's prediction.
PREDICTION = "prediction"
#: Metrics whose objective is a floor (budget ``1 - objective``); the others are ceilings.
FLOOR_METRICS = ("accuracy", "f1", "label_coverage")
#: Names the request SLOs use as their ``slo`` label: a quality SLO may not take them.
RESERVED_NAMES = ("availability", "error_rate", "latency_p99", "throughput")

Problem = tuple[tuple[str | int, ...], str, object, str]


class QualitySlo(Section):
    """One quality SLO (``slos.quality[]``)."""

    name: str = Field(description="Unique name (the 'slo' label, part of the alert's name).")
    metric: str = Field(description="What is counted: " + "; ".join(
        f"{k}: {v}" for k, v in QUALITY_METRICS.items()) + ".")
    objective: float = Field(description="accuracy, f1, label_coverage: a minimum in (0, 1); "
                             "violation_rate, null_rate, drift: a maximum share in (0, 1); "
                             "mae: a maximum error (> 0).")
    model: str | None = Field(default=None, description="The model it judges (default: "
                              "every model of keel.yaml, each on its own).")
    feature: str | None = Field(default=None, description="null_rate: the input field "
                                "counted (default: every input of the contract); drift: the "
                                "input field, or 'prediction' (required).")
    threshold: PositiveFloat | None = Field(
        default=None, description="drift only: a slice whose drift score of 'feature' "
        "exceeds it is drifted (default: the monitor's own verdict, its method's floor and "
        "the sampling noise).")
    tiers: list[SloTier] | None = Field(
        default=None, description="Its own burn-rate alerts (default: slos.tiers, else the "
        "workbook's). Quality budgets are often large (15% for accuracy 0.85), where a 14.4x "
        "burn cannot happen: give such an SLO tiers of lower rates.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        check_name(v, "a quality SLO name")
        if v in RESERVED_NAMES:
            raise PydanticCustomError(
                "quality_name_reserved", "{got} names a request SLO; pick another name",
                {"got": repr(v)})
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in QUALITY_METRICS:
            raise PydanticCustomError(
                "quality_metric", "must be one of {names}; got {got}",
                {"names": ", ".join(QUALITY_METRICS), "got": repr(v)})
        return v

    @model_validator(mode="after")
    def _fields(self) -> QualitySlo:
        m, obj = self.metric, self.objective
        if m == "mae":
            if not obj > 0:
                raise _bad_objective(m, "greater than 0", obj)
        elif not 0 < obj < 1:
            kind = "a minimum" if m in FLOOR_METRICS else "a maximum share"
            raise _bad_objective(m, f"{kind} strictly between 0 and 1 (1 - objective, or "
                                 "the objective, is the error budget)", obj)
        if self.feature is not None and m not in ("null_rate", "drift"):
            raise PydanticCustomError(
                "quality_field", "feature is for metrics null_rate and drift only; got it "
                "with {metric}", {"metric": m})
        if self.feature is None and m == "drift":
            raise PydanticCustomError(
                "quality_field", "metric drift needs a feature: an input of the contract or "
                "'prediction'", {})
        names: set[str] = set()
        for t in self.tiers or ():
            if t.name in names:
                raise PydanticCustomError("duplicate_tier", "tier name {name} appears twice",
                                          {"name": repr(t.name)})
            names.add(t.name)
        if self.threshold is not None and m != "drift":
            raise PydanticCustomError(
                "quality_field", "threshold is for metric drift only; got it with {metric}",
                {"metric": m})
        return self


def _bad_objective(metric: str, rule: str, got: float) -> PydanticCustomError:
    return PydanticCustomError("quality_objective",
                               "the objective of {metric} must be {rule}; got {got}",
                               {"metric": metric, "rule": rule, "got": got})


def check_unique(items: Sequence[QualitySlo]) -> None:
    """Refuse two quality SLOs of one name (their alerts would be one)."""
    seen: set[str] = set()
    for q in items:
        if q.name in seen:
            raise PydanticCustomError("duplicate_quality_slo",
                                      "quality SLO name {name} appears twice",
                                      {"name": repr(q.name)})
        seen.add(q.name)


def binary_positive(outputs: Sequence[Any], positive: str | None) -> str | None:
    """The positive class of a binary classifier: ``monitoring.labels.positive``, else the
    second of the two categories of the output contract in sorted order (as scikit-learn
    orders classes); None when neither says."""
    if positive is not None:
        return positive
    for f in outputs:
        cats = getattr(f, "categories", None)
        if cats and len(cats) == 2:
            return str(sorted(cats, key=str)[1])
    return None


def drift_slice(windows: Sequence[str]) -> str | None:
    """The slice of drift SLOs: the first time window of ``monitoring.windows``, as ``keel
    serve``'s monitoring loop computes and stores it (``1h``); None when there is none (a
    window of N predictions is no time slice)."""
    for w in windows:
        m = re.match(r"^\s*(\d+)\s*([smhd])\s*$", w)
        if m is not None:
            return f"{int(m.group(1))}{m.group(2)}"
    return None


def quality_problems(items: Sequence[QualitySlo], *, models: Sequence[str],
                     inputs: Sequence[str], outputs: Sequence[Any], task: str | None,
                     positive: str | None, reference: str | None = None,
                     windows: Sequence[str] = ()) -> list[Problem]:
    """What makes a quality SLO unable to count, given the rest of keel.yaml.

    Args:
        items: ``slos.quality``.
        models: The names of ``models``.
        inputs: The names of ``contract.inputs``.
        outputs: ``contract.outputs`` (for the positive class of f1).
        task: ``classification``, ``regression`` or None, as the output contract says
            (:func:`keelwork.spec.model.output_task`).
        positive: ``monitoring.labels.positive``.
        reference: ``monitoring.reference`` (drift is measured against it).
        windows: ``monitoring.windows`` (drift's slices are the shortest time window).

    Returns:
        ``(path, rule, got, message)`` per problem.
    """
    out: list[Problem] = []
    for i, q in enumerate(items):
        at: tuple[str | int, ...] = ("slos", "quality", i)
        if q.model is not None and q.model not in models:
            out.append(((*at, "model"), "unknown_model", q.model,
                        f"slos.quality[{i}].model names {q.model!r}, which is not a model in "
                        f"this spec (models: {', '.join(models)})"))
        want = {"accuracy": "classification", "f1": "classification",
                "mae": "regression"}.get(q.metric)
        if want is not None and task != want:
            says = (f"says it is a {task} model" if task else
                    "does not say (declare contract.outputs: a float output for a regressor; "
                    "a category, string or boolean one for a classifier)")
            out.append(((*at, "metric"), "quality_task", q.metric,
                        f"metric {q.metric} needs a {want} model, and the output contract "
                        f"{says}"))
        elif q.metric == "f1" and binary_positive(outputs, positive) is None:
            out.append(((*at, "metric"), "quality_positive", q.metric,
                        "metric f1 needs the positive class: set monitoring.labels.positive "
                        "or give the output contract's label its two categories"))
        if q.metric == "drift":
            if q.feature is not None and q.feature not in (*inputs, PREDICTION):
                shown = ", ".join(inputs) or "none"
                out.append(((*at, "feature"), "unknown_feature", q.feature,
                            f"slos.quality[{i}].feature names {q.feature!r}, which is neither "
                            f"an input of the contract (inputs: {shown}) nor 'prediction'"))
            if reference is None:
                out.append(((*at, "metric"), "drift_no_reference", q.metric,
                            "metric drift is measured against the monitoring reference: set "
                            "monitoring.reference"))
            if drift_slice(windows) is None:
                out.append(((*at, "metric"), "drift_no_slice", q.metric,
                            "metric drift counts the time windows of keel serve's monitoring: "
                            "monitoring.windows needs one (e.g. 1h)"))
        if q.metric == "null_rate":
            if q.feature is not None and q.feature not in inputs:
                shown = ", ".join(inputs) or "none"
                out.append(((*at, "feature"), "unknown_feature", q.feature,
                            f"slos.quality[{i}].feature names {q.feature!r}, which is not an "
                            f"input of the contract (inputs: {shown})"))
            elif q.feature is None and not inputs:
                out.append(((*at, "feature"), "quality_no_inputs", None,
                            "null_rate counts the contract's inputs, and contract.inputs is "
                            "empty: declare them or name a feature"))
    return out


QualityMetric = Literal["accuracy", "f1", "mae", "violation_rate", "null_rate",
                        "label_coverage", "drift"]

__all__ = ["FLOOR_METRICS", "LABEL_METRICS", "PREDICTION", "QUALITY_METRICS", "QualityMetric",
           "QualitySlo", "binary_positive", "check_unique", "drift_slice", "quality_problems"]
