"""Monitoring references: profiled once from reference data, stored, reused by every run.

:func:`build_reference` reads the reference file (``monitoring.reference`` of keel.yaml), runs the
registered model on it through its runtime (so the prediction columns describe what *this*
model predicts on the reference, not what the training labels were), and profiles:

- the input columns (keel.yaml's declared inputs when there are some, else every column but
  the label column), flattened as :mod:`keelwork.core.monitors.windows` documents;
- the prediction columns (``prediction:label`` / ``prediction:value``, and
  ``prediction:score`` for a binary classifier with probabilities);
- the ground truth (``label:label`` / ``label:value``) when the file has the label column:
  ``monitoring.labels.column``, else a column named ``label``, ``target`` or ``y`` that is not a
  declared input;
- free-text columns (``monitoring.text_columns``, else string columns that look like prose:
  mostly distinct values averaging 20+ characters) as a text reference (descriptor drift);
- a CBPE reference (confidence-based performance estimation) when there are labels and
  probabilities (binary: the positive class's score; three or more classes: a probability per
  class, calibrated one-vs-rest), so windows without labels get an estimated performance; else
  ``cbpe_reason`` says why not.

The result, a :class:`MonitorReference` (``kind``/``version``), goes to the
``monitor_references`` table; :func:`reference_on_register` is the hook ``keel models
register`` calls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from keelwork.core.monitors.columns import column_kinds, columns_table, detect_text_columns
from keelwork.core.monitors.profile import TableProfile, profile_table
from keelwork.core.monitors.reference import (
    MonitorReference,
    inputs_only,
)
from keelwork.core.monitors.windows import (
    LABEL_LABEL,
    PREDICTION_LABEL,
    PREDICTION_SCORE,
    OutputSchema,
    category,
    flatten_instance,
    flatten_label,
    flatten_output,
    proba_row,
)
from keelwork.errors import MonitorError
from keelwork.service.models import load_registered, unload
from keelwork.service.monitoring.reliance import reference_reliance
from keelwork.spec.model import ResolvedSpec

log = logging.getLogger("keelwork.monitor")

#: Rows per model call while predicting on the reference.
PREDICT_BATCH = 2048
_LABEL_NAMES = ("label", "target", "y")
#: Values per segment field whose reference slice is kept (the most frequent).
MAX_SEGMENT_VALUES = 100


# --------------------------------------------------------------------------- building
def build_reference(resolved: ResolvedSpec, model: str | None = None, *,
                    data: Path | None = None, runtime: Any = None,
                    model_version: int | None = None) -> MonitorReference:
    """Profile reference data (and the model's predictions on it) for ``model``.

    Args:
        resolved: The project's keel.yaml.
        model: The model (default: the first in keel.yaml).
        data: The reference file (default: ``monitoring.reference``).
        runtime: A loaded runtime to predict with (default: the registered version, loaded
            from the registry).
        model_version: The version ``runtime`` is (with ``runtime``).

    Returns:
        The reference (not yet stored: see :func:`store_reference`).

    Raises:
        MonitorError: no reference data is configured, or the file has no usable column.
        DataFileError: the file is missing or unreadable.
        ModelNotFoundError / ModelLoadError: the model cannot be resolved or loaded.
    """
    from keelwork.adapters.data import read_table

    spec = resolved.spec
    name = model or (spec.models[0].name if spec.models else None)
    if name is None:
        raise MonitorError("keel.yaml declares no model to build a monitoring reference for.")
    mon = spec.monitoring
    if data is None:
        if mon.reference is None:
            raise MonitorError(
                "No reference data: set monitoring.reference in keel.yaml (a CSV, Parquet or "
                "JSONL file of model inputs, with the label column if you have one) or pass "
                "--data FILE.")
        data = resolved.resolve_path(mon.reference)
    rows: list[dict[str, Any]] = read_table(data).to_pylist()
    if not rows:
        raise MonitorError(f"The reference data {str(data)!r} holds no rows.")
    header = list(rows[0])
    declared = [f.name for f in spec.contract.inputs]
    label_col = mon.labels.column
    if label_col is not None and label_col not in header:
        raise MonitorError(f"monitoring.labels.column is {label_col!r} but the reference data "
                           f"{str(data)!r} has no such column; columns: {', '.join(header)}.")
    if label_col is None:
        label_col = next((c for c in _LABEL_NAMES if c in header and c not in declared), None)
    inputs = [c for c in (declared or header) if c in header and c != label_col]
    if not inputs:
        raise MonitorError(f"The reference data {str(data)!r} has none of the model's input "
                           f"columns ({', '.join(declared)}); columns: {', '.join(header)}.")
    instances = [{c: r.get(c) for c in inputs} for r in rows]

    owned = runtime is None
    if owned:
        runtime, model_version = load_registered(resolved, name)
    try:
        schema = _schema(runtime, resolved, name, mon.labels.positive)
        outputs, proba = _predict(runtime, instances)
        reliance = reference_reliance(runtime, instances, label=name,
                                      explain=spec.explain if spec.explain.enabled else None)
    finally:
        if owned:
            unload(runtime)

    flat: list[dict[str, Any]] = []
    rows_proba: list[list[float] | None] = []
    for inst, row, out, p in zip(instances, rows, outputs, proba, strict=True):
        cols = flatten_instance(inst, schema)
        cols.update(flatten_output({"label": out, "probabilities": p} if p is not None
                                   else out, schema))
        if label_col is not None:
            cols.update(flatten_label(row.get(label_col), schema))
        rows_proba.append(proba_row(cols, schema))
        flat.append({k: v for k, v in cols.items() if not k.startswith("prediction:proba:")})
    text_cols = (list(mon.text_columns) if mon.text_columns is not None
                 else detect_text_columns(flat, inputs))
    kinds = column_kinds(flat)
    for k in (PREDICTION_LABEL, LABEL_LABEL):
        if k in kinds:
            kinds[k] = "categorical"
    for t in text_cols:
        kinds.pop(t, None)
    profile = profile_table(columns_table(flat, kinds), kinds=kinds)
    text = _text_references(flat, text_cols)
    warnings = (label_mismatch(schema, outputs, [r.get(label_col) for r in rows], label_col)
                if label_col is not None else [])
    for w in warnings:
        log.warning("monitoring reference of %s: %s", name, w)
    cbpe, cbpe_reason = _cbpe(flat, schema, rows_proba, label_col)
    segments = _segment_profiles(flat, mon.segments, kinds, profile)
    return MonitorReference(model=name, model_version=model_version, source=str(data),
                            created_at=datetime.now(UTC), schema=schema, profile=profile,
                            input_columns=tuple(inputs), label_column=label_col, cbpe=cbpe,
                            cbpe_reason=cbpe_reason,
                            text=text, segments=segments, warnings=tuple(warnings),
                            reliance=reliance)


def label_mismatch(schema: OutputSchema, outputs: Sequence[Any], labels: Sequence[Any],
                   column: str) -> list[str]:
    """Why the model's answers and the reference's label column cannot be compared, if so.

    A classifier's classes (or, without declared classes, what it answered on the reference)
    must share the label column's vocabulary, else label drift and realised quality compare
    two vocabularies (``1`` against ``'class_1'``) and alarm on nothing; a regressor's labels
    must be numbers.
    """
    values = [v for v in labels if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return []
    if schema.task == "regression":
        if any(isinstance(o, str) for o in outputs[:100]):
            return []  # a text-answering model without classes: nothing to say
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)]
        if bad:
            return [f"the label column {column!r} holds non-numeric values (e.g. {bad[0]!r}) "
                    f"but the model is a regressor: its quality and label drift cannot be "
                    f"computed from them."]
        return []
    known = set(schema.classes or ()) or {category(o) for o in outputs if o is not None}
    seen = {category(v) for v in values}
    unknown = sorted(seen - known)
    if not unknown:
        return []
    types = sorted({type(v).__name__ for v in values})
    answer_types = sorted({type(o).__name__ for o in outputs[:1000] if o is not None})
    shared = "no value" if not seen & known else f"only {len(seen & known)} of {len(seen)} values"
    return [f"the model's labels ({', '.join(sorted(known)[:8])}; {'/'.join(answer_types)}) and "
            f"the reference's label column {column!r} ({', '.join(unknown[:8])}; "
            f"{'/'.join(types)}) share {shared}: label drift and realised quality would "
            f"compare different vocabularies. Make the labels the model's classes (or the "
            f"model's classes the labels')."]


def _segment_profiles(flat: Sequence[Mapping[str, Any]], fields: Sequence[str],
                      kinds: Mapping[str, str], profile: TableProfile,
                      ) -> dict[str, dict[str, TableProfile]]:
    """Each segment value's slice of the reference, in the whole reference's layout.

    A window's segment is compared with the *same* segment of the reference: against the
    whole reference, a slice always "drifts" in whatever correlates with the slicing field.
    """
    out: dict[str, dict[str, TableProfile]] = {}
    for f in fields:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in flat:
            v = r.get(f)
            if v is not None:
                groups.setdefault(category(v), []).append(r)
        ranked = sorted(groups, key=lambda v: (-len(groups[v]), v))[:MAX_SEGMENT_VALUES]
        if ranked:
            out[f] = {v: profile_table(columns_table(groups[v], kinds), reference=profile)
                      for v in ranked}
    return out


def open_rescorer(resolved: ResolvedSpec, name: str, version: int | None = None, *,
                  lazy: bool = False,
                  ) -> tuple[Callable[[list[Any]], list[Any] | None], Callable[[], None]]:
    """Load ``name`` (its champion, or ``version``) and return ``(score, close)``: ``score``
    gives the probability rows of logged instances (what a run needs when the log holds labels
    only), ``close`` unloads. ``lazy``: load on the first ``score`` call (a run whose windows
    come from rollups never loads the model); a model that fails to load then scores nothing
    (``score`` returns None: the run goes on without scores) and a warning is logged."""
    loaded: list[Any] = []

    def runtime() -> Any:
        if not loaded:
            try:
                loaded.append(load_registered(
                    resolved, name, None if version is None else str(version))[0])
            except Exception as exc:
                if not lazy:
                    raise
                loaded.append(None)
                logging.getLogger("keelwork.monitor").warning(
                    "the model could not be loaded to score logged inputs (%s: %s); "
                    "prediction:score and CBPE are left out.", type(exc).__name__, exc)
        return loaded[0]

    def score(instances: list[Any]) -> list[Any] | None:
        proba = getattr(runtime(), "predict_proba", None)
        return None if proba is None else cast("list[Any] | None", proba(instances))

    def close() -> None:
        if loaded and loaded[0] is not None:
            unload(loaded[0])

    if not lazy:
        runtime()
    return score, close


def _schema(runtime: Any, resolved: ResolvedSpec, name: str,
            positive: str | None) -> OutputSchema:
    sig = getattr(runtime, "signature", None)
    classes = getattr(sig, "classes", None)
    names = getattr(sig, "feature_names", None)
    try:
        options = resolved.spec.model(name).options
    except KeyError:
        options = {}
    text_field = options.get("text_field") or "input"
    # Two or more contract outputs of a regressor: its answer is a record of them (or a list
    # in their order), each monitored as its own column.
    fields = tuple(f.name for f in resolved.spec.contract.outputs)
    return OutputSchema(classes=tuple(category(c) for c in classes) if classes else None,
                        positive=positive,
                        feature_names=tuple(str(n) for n in names) if names else None,
                        text_field=str(text_field),
                        outputs=fields if len(fields) > 1 and not classes else None)


def _predict(runtime: Any, instances: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    outputs: list[Any] = []
    proba: list[Any] = []
    for start in range(0, len(instances), PREDICT_BATCH):
        batch = instances[start:start + PREDICT_BATCH]
        outputs.extend(runtime.predict(batch))
        p = runtime.predict_proba(batch) if hasattr(runtime, "predict_proba") else None
        proba.extend(p if p is not None else [None] * len(batch))
    return outputs, proba


def _text_references(flat: Sequence[Mapping[str, Any]],
                     columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    from keelwork.core.monitors.text import build_text_reference

    out = {}
    for c in columns:
        texts = [v if isinstance(v, str) else None for v in (r.get(c) for r in flat)]
        out[c] = build_text_reference(c, texts).as_dict()
    return out


def _cbpe(flat: Sequence[Mapping[str, Any]], schema: OutputSchema,
          proba: Sequence[list[float] | None], label_col: str | None,
          ) -> tuple[dict[str, Any] | None, str | None]:
    """The CBPE reference (binary, or one-vs-rest for 3+ classes), or why there is none."""
    from keelwork.core.monitors.cbpe import fit_cbpe
    from keelwork.core.monitors.cbpe_multiclass import fit_cbpe_multiclass

    if schema.task == "regression":
        return None, ("CBPE estimates classifiers; this model has no classes (a regressor): "
                      "its quality comes from labels only.")
    if label_col is None:
        return None, ("the reference data has no label column (set monitoring.labels.column), "
                      "and CBPE is fitted on labelled reference rows.")
    try:
        positive = schema.binary_positive
        if positive is not None:
            pairs = [(r[PREDICTION_SCORE], r[LABEL_LABEL]) for r in flat
                     if PREDICTION_SCORE in r and LABEL_LABEL in r]
            if not pairs:
                return None, ("the model gives no probabilities (predict_proba) on the "
                              "reference, and CBPE estimates from them.")
            ref: Any = fit_cbpe([s for s, _ in pairs], [y for _, y in pairs],
                                positive=positive)
        else:
            assert schema.classes is not None
            rows = [(p, r[LABEL_LABEL]) for r, p in zip(flat, proba, strict=True)
                    if p is not None and LABEL_LABEL in r]
            if not rows:
                return None, ("the model gives no probability for each of its "
                              f"{len(schema.classes)} classes (predict_proba) on the "
                              "reference, and CBPE estimates from them.")
            ref = fit_cbpe_multiclass([p for p, _ in rows], [y for _, y in rows],
                                      schema.classes)
    except MonitorError as exc:
        log.warning("no performance estimation (CBPE) for this reference: %s", exc)
        return None, str(exc)
    body: dict[str, Any] = ref.as_dict()
    return body, None


# --------------------------------------------------------------------------- storing
def store_reference(resolved: ResolvedSpec, reference: MonitorReference) -> Any:
    """Store ``reference`` in the project's store; returns the stored row."""
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.monitor_store import MonitorStore

    engine = make_engine(resolved.storage_url)
    try:
        store = MonitorStore(engine)
        store.ensure_schema()
        return store.put_reference(reference.model, reference.model_version, reference.source,
                                   reference.as_dict())
    finally:
        engine.dispose()


def reference_on_register(resolved: ResolvedSpec, model: str, version: int | None = None,
                          ) -> str | None:
    """The ``keel models register`` hook: build and store the reference, never fail.

    Does nothing when keel.yaml sets no ``monitoring.reference`` or does not declare
    ``model``. Any failure is logged and returned as a one-line warning: a registration must
    not be refused because its monitoring reference could not be profiled.

    Args:
        resolved: The project's keel.yaml.
        model: The model just registered.
        version: Its new version (profiled with that version's predictions).

    Returns:
        None when the reference was stored or not wanted, else the warning text.
    """
    if resolved.spec.monitoring.reference is None or model not in {
            m.name for m in resolved.spec.models}:
        return None
    runtime = None
    try:
        if version is not None:
            runtime, version = load_registered(resolved, model, str(version))
        ref = build_reference(resolved, model, runtime=runtime, model_version=version)
        store_reference(resolved, ref)
        return None
    except Exception as exc:  # a broken reference must not fail the registration
        message = (f"the monitoring reference of {model!r} was not built: "
                   f"{type(exc).__name__}: {exc}")
        log.warning(message)
        return message
    finally:
        if runtime is not None:
            unload(runtime)


def champion_version(resolved: ResolvedSpec, name: str) -> int | None:
    """The version a bare ``name`` resolves to (its champion), or None when not registered."""
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.errors import KeelworkError

    try:
        with open_registry(resolved.project_dir, resolved.storage_url, audit=False) as registry:
            return int(registry.resolve(name).version)
    except KeelworkError:
        return None


def ensure_references(resolved: ResolvedSpec) -> list[str]:
    """Build the champion's reference of every keel.yaml model that lacks one.

    What ``keel models register`` does for a new version, for the versions ``keel serve``
    registered from ``artifact:`` (or any registered some other way): with
    ``monitoring.reference`` set, a served champion always has its reference, so ``keel
    monitor run`` works in a fresh project. Never fails: each problem is returned (and logged)
    as a one-line warning.

    Returns:
        The warnings.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.monitor_store import MonitorStore

    if resolved.spec.monitoring.reference is None:
        return []
    warnings: list[str] = []
    engine = make_engine(resolved.storage_url)
    try:
        store = MonitorStore(engine)
        store.ensure_schema()
        for m in resolved.spec.models:
            version = champion_version(resolved, m.name)
            if version is None or store.latest_reference(m.name, version) is not None:
                continue
            log.info("building the monitoring reference of %s:%d", m.name, version)
            warning = reference_on_register(resolved, m.name, version)
            if warning is not None:
                warnings.append(warning)
    except Exception as exc:  # a monitoring problem must not stop the server
        warnings.append(f"the monitoring references were not checked: "
                        f"{type(exc).__name__}: {exc}")
        log.warning(warnings[-1])
    finally:
        engine.dispose()
    return warnings


def load_reference(engine: Any, model: str, version: int | None = None,
                   ) -> tuple[MonitorReference, Any]:
    """The reference a run of ``model`` (``version``'s predictions) compares with, and its row.

    A reference belongs to the version whose predictions it profiled: ``version``'s own
    (latest) reference is used. When ``version`` has none, the latest reference of another
    version still serves for the *inputs* and the ground truth (the same reference data
    whatever the model): its prediction columns and CBPE are dropped, since they describe
    another model, and :attr:`MonitorReference.note` says so. ``version=None`` (the model
    is not in the registry) takes the latest reference of any version.

    Raises:
        MonitorError: none is stored (the message says how to build one).
    """
    from keelwork.adapters.stores.monitor_store import MonitorStore

    store = MonitorStore(engine)
    store.ensure_schema()
    row = store.latest_reference(model, version) if version is not None else None
    if row is not None or version is None:
        row = row or store.latest_reference(model)
        if row is None:
            raise MonitorError(
                f"No monitoring reference is stored for model {model!r}; build one with "
                f"'keel monitor reference --model {model}' (it profiles monitoring.reference "
                f"of keel.yaml).")
        return MonitorReference.from_dict(row.body), row
    other = store.latest_reference(model)
    if other is None:
        raise MonitorError(
            f"No monitoring reference is stored for model {model!r} version {version}; build "
            f"one with 'keel monitor reference --model {model} --version {version}' (it "
            f"profiles monitoring.reference of keel.yaml with that version's predictions).")
    ref = MonitorReference.from_dict(other.body)
    return inputs_only(ref, f"version {version} has no reference of its own: its inputs are "
                            f"compared with the reference of version {ref.model_version} "
                            f"(its prediction columns, which describe that version, are left "
                            f"out); build one with 'keel monitor reference --model {model} "
                            f"--version {version}'."), other


__all__ = [
    "build_reference",
    "champion_version",
    "ensure_references",
    "label_mismatch",
    "load_reference",
    "open_rescorer",
    "reference_on_register",
    "store_reference",
]
