"""Monitoring windows over the prediction log, and logged payloads flattened into columns.

Window specs (``monitoring.windows`` in keel.yaml, ``keel monitor run --window``):

- ``<N>s`` / ``<N>m`` / ``<N>h`` / ``<N>d``: a *time* window of that length, aligned to UTC
  boundaries counted from the unix epoch (``1h`` windows start on the hour, ``1d`` at
  midnight UTC, ``15m`` at :00/:15/:30/:45). A window is ``[start, end)``.
- ``<N>p`` (also a bare number, ``1000`` == ``1000p``): every ``N`` predictions, in log order
  from the start of the run; a window's start/end are its first prediction's ``ts`` and the
  next window's first ``ts`` (the last one ends at its last ``ts`` plus a microsecond). The
  same log read from the same ``since`` gives the same windows.

Columns (what :func:`flatten_instance`, :func:`flatten_output` and :func:`flatten_label`
produce, the names every reference and window profile share):

- inputs: a record (dict) gives one column per scalar field, by field name (``None`` stays a
  null; nested lists/objects are skipped); a list gives one column per position named after
  the model signature's ``feature_names`` (``f0``, ``f1``, ... without names); a scalar (one
  text, one number) gives the column ``text_field`` (default ``input``).
- predictions: a scalar gives ``prediction:label`` (its text) for a classifier (the model has
  classes) and ``prediction:value`` (a number) for a regressor; a record is read by key:
  ``label``/``prediction``/``class`` -> ``prediction:label``, ``score`` -> ``prediction:score``,
  ``value`` -> ``prediction:value``, ``probabilities``/``proba`` (list in class order or a
  class -> probability object) -> ``prediction:proba:<class>``; a list of numbers as long as
  the classes is a probability row. For a binary classifier the positive class's probability
  is also ``prediction:score``.
- multi-output regression (``OutputSchema.outputs``: the output contract's fields, two or
  more): the answer is a record of those fields, or a list of their values in contract order
  (read as that record). Each numeric field gives ``prediction:value:<field>``; the first
  field is also ``prediction:value`` (what realised quality compares).
- ground truth: ``label:label`` (classification, text) or ``label:value`` (regression); a
  label sent as an object is read at its ``label``/``value``/``y`` key. For a multi-output
  regressor a label is a record of (some of) the output fields, a list in contract order, or
  a scalar (the first field's value); each gives ``label:value:<field>``, and the first field's
  value is ``label:value``.

Pure logic, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from keelwork.errors import MonitorError
from keelwork.spec.durations import UNIT_SECONDS

PREDICTION_LABEL = "prediction:label"
PREDICTION_SCORE = "prediction:score"
PREDICTION_VALUE = "prediction:value"
PROBA_PREFIX = "prediction:proba:"
LABEL_LABEL = "label:label"
LABEL_VALUE = "label:value"
#: Prefixes of a multi-output regressor's per-field prediction and label columns.
PREDICTION_FIELD = "prediction:value:"
LABEL_FIELD = "label:value:"

_SPEC = re.compile(r"^\s*(\d+)\s*([smhdp]?)\s*$")
_LABEL_KEYS = ("label", "prediction", "class")
_PROBA_KEYS = ("probabilities", "proba", "probability", "scores")


# --------------------------------------------------------------------------- window specs
@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A parsed window: ``seconds`` for a time window, ``count`` for an N-predictions one."""

    text: str
    seconds: int | None = None
    count: int | None = None

    @property
    def is_time(self) -> bool:
        """Whether windows are fixed time intervals (else every ``count`` predictions)."""
        return self.seconds is not None

    def start_of(self, ts: float) -> float:
        """The start of the time window holding ``ts`` (UTC-aligned).

        Raises:
            MonitorError: this is a count window (it has no fixed boundaries).
        """
        if self.seconds is None:
            raise MonitorError(f"The window {self.text!r} counts predictions; it has no fixed "
                               f"time boundaries.")
        return math.floor(ts / self.seconds) * float(self.seconds)

    def time_windows(self, since: float, until: float) -> list[tuple[float, float]]:
        """Every aligned ``[start, end)`` window overlapping ``[since, until)``, in order.

        The first and last may extend beyond ``since``/``until``: a window is always whole, so
        its result does not depend on where a run started.
        """
        if self.seconds is None:
            raise MonitorError(f"The window {self.text!r} counts predictions; it has no fixed "
                               f"time boundaries.")
        out = []
        start = self.start_of(since)
        while start < until:
            out.append((start, start + self.seconds))
            start += self.seconds
        return out


def parse_window(text: str) -> WindowSpec:
    """Parse ``15m``, ``1h``, ``1d``, ``30s`` or ``1000p`` / ``1000`` (see the module docstring).

    Raises:
        MonitorError: not a window spec, or a zero length.
    """
    m = _SPEC.match(str(text))
    if m is None or int(m.group(1)) <= 0:
        raise MonitorError(
            f"A monitoring window must be a positive length with a unit s/m/h/d (e.g. '1h', "
            f"'15m', '1d') or a number of predictions ('1000p' or '1000'); got {text!r}.")
    n, unit = int(m.group(1)), m.group(2)
    if unit in ("", "p"):
        return WindowSpec(f"{n}p", count=n)
    return WindowSpec(f"{n}{unit}", seconds=int(n * UNIT_SECONDS[unit]))


def parse_duration(text: str) -> float:
    """Seconds in ``30s``/``15m``/``1h``/``7d`` (keel.yaml durations).

    Raises:
        MonitorError: not a duration.
    """
    spec = parse_window(text)
    if spec.seconds is None:
        raise MonitorError(f"A duration must have a unit s/m/h/d (e.g. '7d'); got {text!r}.")
    return float(spec.seconds)


# --------------------------------------------------------------------------- flattening
@dataclass(frozen=True, slots=True)
class OutputSchema:
    """What the model's outputs mean: its classes (None: a regressor) and positive class."""

    classes: tuple[str, ...] | None = None
    positive: str | None = None
    feature_names: tuple[str, ...] | None = None
    text_field: str = "input"
    #: A multi-output regressor's output fields in contract order (None: one output).
    outputs: tuple[str, ...] | None = None

    @property
    def task(self) -> str:
        """``classification`` when the model has classes, else ``regression``."""
        return "classification" if self.classes else "regression"

    @property
    def binary_positive(self) -> str | None:
        """The positive class of a binary classifier (default: the second class, as sklearn)."""
        if not self.classes or len(self.classes) != 2:
            return None
        return self.positive if self.positive in self.classes else self.classes[1]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible view."""
        out: dict[str, Any] = {
            "classes": list(self.classes) if self.classes is not None else None,
            "positive": self.positive,
            "feature_names": (list(self.feature_names)
                              if self.feature_names is not None else None),
            "text_field": self.text_field}
        if self.outputs is not None:  # only then: other layout fingerprints stay as they were
            out["outputs"] = list(self.outputs)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSchema:
        """Inverse of :meth:`as_dict`."""
        classes, names = data.get("classes"), data.get("feature_names")
        outputs = data.get("outputs")
        return cls(classes=tuple(str(c) for c in classes) if classes is not None else None,
                   positive=data.get("positive"),
                   feature_names=tuple(str(n) for n in names) if names is not None else None,
                   text_field=str(data.get("text_field") or "input"),
                   outputs=tuple(str(n) for n in outputs) if outputs else None)

    def as_record(self, value: Any) -> Mapping[str, Any] | None:
        """A multi-output regressor's answer or label as the record of its output fields: a
        record as it is, a list of as many values as there are fields in contract order;
        None when this is not a multi-output regressor or ``value`` is neither."""
        if not self.outputs or self.classes:
            return None
        if isinstance(value, Mapping):
            return value if any(f in value for f in self.outputs) else None
        if isinstance(value, list | tuple) and len(value) == len(self.outputs):
            return dict(zip(self.outputs, value, strict=True))
        return None


def flatten_instance(instance: Any, schema: OutputSchema,
                     only: Collection[str] | None = None) -> dict[str, Any]:
    """Input columns of one logged instance (see the module docstring); ``only``: just
    these columns (those a caller reads), skipping the work of flattening the rest."""
    if only is not None:
        if isinstance(instance, Mapping):
            return {k: v for k in only if k in instance and _scalar(v := instance[k])}
        return {k: v for k, v in flatten_instance(instance, schema).items() if k in only}
    if isinstance(instance, Mapping):
        return {str(k): v for k, v in instance.items() if _scalar(v)}
    if isinstance(instance, list | tuple):
        names = schema.feature_names
        return {(names[i] if names is not None and i < len(names) else f"f{i}"): v
                for i, v in enumerate(instance) if _scalar(v)}
    if _scalar(instance) and instance is not None:
        return {schema.text_field: instance}
    return {}


def flatten_output(output: Any, schema: OutputSchema) -> dict[str, Any]:
    """Prediction columns of one logged output (see the module docstring)."""
    out: dict[str, Any] = {}
    record = schema.as_record(output)
    if record is not None:
        _put_fields(out, record, schema, PREDICTION_FIELD, PREDICTION_VALUE)
    elif isinstance(output, Mapping):
        for key in _LABEL_KEYS:
            if key in output and _scalar(output[key]) and output[key] is not None:
                _put_prediction(out, output[key], schema)
                break
        if _number(output.get("score")):
            out[PREDICTION_SCORE] = float(output["score"])
        if _number(output.get("value")):
            out[PREDICTION_VALUE] = float(output["value"])
        for key in _PROBA_KEYS:
            if key in output:
                _put_proba(out, output[key], schema)
                break
    elif isinstance(output, list | tuple):
        if (schema.classes and len(output) == len(schema.classes)
                and all(_number(v) for v in output)):
            _put_proba(out, output, schema)
        elif len(output) == 1 and _scalar(output[0]):
            _put_prediction(out, output[0], schema)
    elif _scalar(output) and output is not None:
        _put_prediction(out, output, schema)
    return out


def flatten_label(label: Any, schema: OutputSchema) -> dict[str, Any]:
    """The ground-truth column of one stored label (empty for None or an unreadable one)."""
    if schema.outputs and not schema.classes:
        record = schema.as_record(label)
        if record is None and _number(label):
            record = {schema.outputs[0]: label}
        if record is not None:
            out: dict[str, Any] = {}
            _put_fields(out, record, schema, LABEL_FIELD, LABEL_VALUE)
            return out
    if isinstance(label, Mapping):
        for key in ("label", "value", "y"):
            if key in label:
                label = label[key]
                break
        else:
            return {}
    if label is None or not _scalar(label):
        return {}
    if schema.classes:
        return {LABEL_LABEL: category(label)}
    return {LABEL_VALUE: float(label)} if _number(label) else {}


def labelled_pair(cols: Mapping[str, Any], schema: OutputSchema) -> tuple[Any, Any] | None:
    """The truth and the prediction realised quality compares in one row's flattened columns;
    None when the row has no such pair (not labelled, or unreadable).

    A multi-output regressor's pair is two tuples in output-field order, each field's value
    or None where the answer or the label lacks it (a label may name some fields only).
    """
    if schema.outputs and not schema.classes:
        truth = tuple(cols.get(LABEL_FIELD + f) for f in schema.outputs)
        pred = tuple(cols.get(PREDICTION_FIELD + f) for f in schema.outputs)
        usable = any(t is not None and p is not None for t, p in zip(truth, pred, strict=True))
        return (truth, pred) if usable else None
    t = cols.get(LABEL_LABEL, cols.get(LABEL_VALUE))
    p = cols.get(PREDICTION_LABEL, cols.get(PREDICTION_VALUE))
    return None if t is None or p is None else (t, p)


def category(value: Any) -> str:
    """The text of a class label as profiles count it (``true``/``false`` for booleans)."""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _put_fields(out: dict[str, Any], record: Mapping[str, Any], schema: OutputSchema,
                prefix: str, first: str) -> None:
    """A multi-output record's numeric fields as ``<prefix><field>``, the first also as
    ``first``."""
    for i, name in enumerate(schema.outputs or ()):
        value: Any = record.get(name)
        if _number(value):
            out[prefix + name] = float(value)
            if i == 0:
                out[first] = out[prefix + name]


def _put_prediction(out: dict[str, Any], value: Any, schema: OutputSchema) -> None:
    if schema.classes:
        out[PREDICTION_LABEL] = category(value)
    elif _number(value):
        out[PREDICTION_VALUE] = float(value)
    else:
        out[PREDICTION_LABEL] = category(value)


def proba_columns(proba: Any, schema: OutputSchema) -> dict[str, float]:
    """The probability columns (and the binary score) of one output's class probabilities,
    as :func:`flatten_output` puts them, without the predicted label."""
    out: dict[str, Any] = {}
    _put_proba(out, proba, schema, label=False)
    return out


def _put_proba(out: dict[str, Any], proba: Any, schema: OutputSchema, *,
               label: bool = True) -> None:
    pairs: Any
    if isinstance(proba, Mapping):
        pairs = [(category(k), v) for k, v in proba.items()]
    elif isinstance(proba, list | tuple) and schema.classes and len(proba) == len(
            schema.classes):
        pairs = zip(schema.classes, proba, strict=True)
    else:
        return
    probs = {k: float(v) for k, v in pairs if _number(v)}
    for k, v in probs.items():
        out[PROBA_PREFIX + k] = v
    positive = schema.binary_positive
    if positive is not None and positive in probs:
        out[PREDICTION_SCORE] = probs[positive]
    if label and PREDICTION_LABEL not in out and probs and schema.classes:
        out[PREDICTION_LABEL] = max(probs, key=lambda k: probs[k])


def proba_row(cols: Mapping[str, Any], schema: OutputSchema) -> list[float] | None:
    """The ``prediction:proba:<class>`` columns of flattened outputs as one row in the order of
    the model's classes; None unless every class has one (multi-class CBPE needs them all)."""
    if not schema.classes:
        return None
    row = [cols.get(PROBA_PREFIX + c) for c in schema.classes]
    floats = [v for v in row if isinstance(v, float)]
    return floats if len(floats) == len(row) else None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float))  # bool is an int


def _number(value: Any) -> bool:
    if type(value) is float:  # the common case first: these run per logged value
        return math.isfinite(value)
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(float(value)))


__all__ = [
    "LABEL_FIELD",
    "LABEL_LABEL",
    "LABEL_VALUE",
    "PREDICTION_FIELD",
    "PREDICTION_LABEL",
    "PREDICTION_SCORE",
    "PREDICTION_VALUE",
    "PROBA_PREFIX",
    "OutputSchema",
    "WindowSpec",
    "category",
    "flatten_instance",
    "flatten_label",
    "flatten_output",
    "labelled_pair",
    "parse_duration",
    "parse_window",
    "proba_columns",
    "proba_row",
]
