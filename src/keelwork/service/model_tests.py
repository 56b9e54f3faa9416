"""``keel test NAME@V``: run a model's declared behavioural tests on a registered version,
store the run with the version, and gate rollouts on it.

keel.yaml's ``models[].tests`` names the tests file (:mod:`keelwork.spec.model_tests`). The
version is loaded as the server loads it (:func:`keelwork.service.models.resolve_target`);
the tests are judged by :mod:`keelwork.core.behaviour`; the run is stored in the project's
store (:mod:`keelwork.adapters.stores.model_test_store`) with the SHA-256 of the tests file.

:func:`gate_on_tests` is what ``keel rollout start`` and ``promote`` ask (wired by
:func:`keelwork.service.projects.rollout_ops` and the server's assembly): a version of a
model that declares tests may go ahead only when its stored run passed with today's tests
file. A model that declares no tests is not gated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from keelwork.errors import ErrorDetail, SpecError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from keelwork.adapters.stores.model_test_store import StoredRun
    from keelwork.core.behaviour.results import Ask, TestResult
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.model_tests import ModelTest, ModelTestsFile
    from keelwork.types import ModelRuntime

#: Instances sent to the model at once.
BATCH = 1024


def tests_path(resolved: ResolvedSpec, name: str) -> Path | None:
    """The tests file keel.yaml declares for ``name``, or None (no model or no tests)."""
    for m in resolved.spec.models:
        if m.name == name and m.tests:
            return resolved.resolve_path(m.tests)
    return None


def _field(name: str) -> str:
    return f"models[{name}].tests"


def load_tests(resolved: ResolvedSpec, name: str) -> tuple[ModelTestsFile, str]:
    """The parsed tests file of ``name`` and the SHA-256 of it and the data files it reads.

    Raises:
        SpecError: keel.yaml declares no tests for ``name``, the file is missing, not YAML,
            or breaks the schema (each problem's path in the file is named).
    """
    from keelwork.spec.loader import format_path
    from keelwork.spec.model_tests import ModelTestsFile

    path = tests_path(resolved, name)
    if path is None:
        raise SpecError(f"Model '{name}' declares no tests: set {_field(name)} in keel.yaml "
                        "to a tests file (docs/model-tests.md).",
                        [ErrorDetail(_field(name), "required")])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{_field(name)}: the tests file {str(path)!r} cannot be read "
                        f"({exc.strerror or exc}).",
                        [ErrorDetail(_field(name), "file_missing", str(path))]) from None
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe", pure=True).load(raw)
    except Exception as exc:  # ruamel raises assorted errors on bad YAML
        raise SpecError(f"{path.name}: not valid YAML: {exc}",
                        [ErrorDetail("<root>", "yaml_syntax", None, str(exc))]) from None
    try:
        tests = ModelTestsFile.model_validate(data)
    except ValidationError as exc:
        details = [ErrorDetail(format_path(tuple(e["loc"])), e["type"], e.get("input"),
                               e["msg"]) for e in exc.errors()]
        shown = "; ".join(f"{d.path}: {d.message}" for d in details[:5])
        raise SpecError(f"{path.name} (tests of '{name}'): {shown}", details) from None
    return tests, _digest(resolved, raw, tests)


def _digest(resolved: ResolvedSpec, raw: bytes, tests: ModelTestsFile) -> str:
    """SHA-256 of the tests file and of every data file its tests read (a changed labelled
    file is other tests too); a missing data file counts as its name."""
    h = hashlib.sha256(raw)
    names: set[str] = {d for t in tests.tests if isinstance(d := getattr(t, "data", None), str)}
    for name in sorted(names):
        h.update(b"\0" + name.encode())
        path = resolved.resolve_path(name)
        if path.is_file():
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def positive_class(resolved: ResolvedSpec, tests: ModelTestsFile,
                   classes: Sequence[Any] | None) -> Any:
    """The class whose probability is a classifier's score: the tests file's ``positive``,
    else keel.yaml's ``monitoring.labels.positive``, else the second of two classes."""
    if tests.positive is not None:
        return tests.positive
    if resolved.spec.monitoring.labels.positive is not None:
        return resolved.spec.monitoring.labels.positive
    return classes[1] if classes and len(classes) == 2 else None


def asker(runtime: ModelRuntime, positive: Any) -> Ask:
    """Asks ``runtime`` for labels and scores, :data:`BATCH` instances at a time."""
    classes = list(getattr(runtime.signature, "classes", None) or [])
    column = next((i for i, c in enumerate(classes) if str(c) == str(positive)), None)
    if classes and positive is not None and column is None:
        raise SpecError(f"The positive class {positive!r} is not one of the model's classes "
                        f"({', '.join(map(str, classes))}); set 'positive' in the tests file.",
                        [ErrorDetail("positive", "unknown_class", positive)])

    def ask(instances: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[float | None]]:
        labels: list[Any] = []
        scores: list[float | None] = []
        for start in range(0, len(instances), BATCH):
            batch = [dict(i) for i in instances[start:start + BATCH]]
            got = runtime.predict(batch)
            labels += got
            if classes:
                proba = runtime.predict_proba(batch) if column is not None else None
                scores += ([float(p[column]) for p in proba]
                           if proba is not None and column is not None else [None] * len(got))
            else:  # a regressor: its value is its score
                scores += [float(v) if isinstance(v, int | float) else None for v in got]
        return labels, scores

    return ask


def _rows(resolved: ResolvedSpec, data: str, limit: int) -> list[dict[str, Any]]:
    from keelwork.adapters.data.readers import read_table

    table = read_table(resolved.resolve_path(data))
    rows: list[dict[str, Any]] = table.slice(0, limit).to_pylist()
    return rows


def run_one(resolved: ResolvedSpec, test: ModelTest, ask: Ask, positive: Any) -> TestResult:
    """Judge one test (reading its data file, if any)."""
    from keelwork.core.behaviour import cases, quality
    from keelwork.spec.model_tests import (
        DirectionalTest,
        FairnessTest,
        InvarianceTest,
        MinimumTest,
        SliceTest,
    )

    if isinstance(test, MinimumTest):
        return cases.minimum(test, ask)
    if isinstance(test, InvarianceTest | DirectionalTest):  # on inputs
        inputs = test.inputs if test.inputs is not None else quality.features(
            _rows(resolved, test.data or "", test.rows), test.drop)
        if isinstance(test, InvarianceTest):
            return cases.invariance(test, inputs, ask)
        return cases.directional(test, inputs, ask)
    assert isinstance(test, SliceTest | FairnessTest)
    rows = _rows(resolved, test.data, test.max_rows)
    by = test.by if isinstance(test, SliceTest) else test.protected
    missing = [c for c in (test.label, by) if c and c not in rows[0]]
    if missing:
        raise SpecError(f"test {test.name!r}: {test.data} has no column {missing[0]!r}",
                        [ErrorDetail(f"tests[{test.name}]", "unknown_column", missing[0])])
    if isinstance(test, SliceTest):
        return quality.slices(test, rows, ask, positive)
    return quality.fairness(test, rows, ask, positive)


def run_tests(resolved: ResolvedSpec, runtime: ModelRuntime,
              tests: ModelTestsFile) -> list[TestResult]:
    """Every test of ``tests`` on a loaded model, in the file's order.

    Raises:
        SpecError: a test cannot be judged (nothing to perturb, no score, a missing column);
            the test is named.
    """
    classes = getattr(runtime.signature, "classes", None)
    positive = positive_class(resolved, tests, classes)
    ask = asker(runtime, positive)
    results = []
    for i, test in enumerate(tests.tests):
        try:
            results.append(run_one(resolved, test, ask, positive))
        except ValueError as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError(str(exc), [ErrorDetail(f"tests[{i}]", "not_judged",
                                                   test.name)]) from None
    return results


def run_version_tests(resolved: ResolvedSpec, ref: str, *, actor: str,
                      audit_anchor: Path | None = None) -> StoredRun:
    """``keel test REF``: load the version, run its model's tests, store and return the run.
    The run is audited (action ``model.test``: who ran which tests file, by digest, on which
    version, and what failed), so a promotion's evidence is in the chain.

    Args:
        resolved: keel.yaml (its store: ``resolved.storage_url``).
        ref: ``NAME:V`` or ``NAME@ALIAS`` (``NAME@V`` with a number means version V).
        actor: Who runs it (stored with the run).
        audit_anchor: A second anchor file of the audit log (the ``audit_anchor`` setting).

    Raises:
        SpecError: the model declares no tests or they are invalid.
        ModelNotFoundError / ModelLoadError: the version is unknown or does not load.
    """
    from keelwork.adapters.stores.audit_store import project_audit_log
    from keelwork.adapters.stores.model_test_store import ModelTestStore
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.core.behaviour import run_passed
    from keelwork.service.models import load_target, resolve_target, unload

    name, _, after = ref.partition("@")
    if after.isdigit():
        ref = f"{name}:{after}"
    with open_registry(resolved.project_dir, resolved.storage_url, audit=False) as registry:
        target = resolve_target(registry, ref, resolved)
        tests, digest = load_tests(resolved, target.name)
        runtime = load_target(target)
        try:
            results = run_tests(resolved, runtime, tests)
        finally:
            unload(runtime)
        store = ModelTestStore(registry.engine)
        store.ensure_schema()
        passed = run_passed(results)
        run = store.put(target.name, target.version, actor=actor, passed=passed,
                        tests_digest=digest, body={
                            "tests_file": str(tests_path(resolved, target.name)),
                            "results": [r.as_dict() for r in results]})
        audit = project_audit_log(registry.engine, resolved.project_dir, audit_anchor)
        audit.ensure_schema()
        audit.append(actor=actor, action="model.test", target=f"{target.name}:{target.version}",
                     details={"passed": passed, "tests_digest": digest, "tests": len(results),
                              "failed": [r.name for r in results if not r.passed]})
        return run


def refusal(resolved: ResolvedSpec, engine: Engine, name: str, version: int) -> str | None:
    """Why version ``version`` of ``name`` may not be rolled out or promoted (its declared
    tests failed, were not run on it, or changed since), or None (passed, or no tests)."""
    from keelwork.adapters.stores.model_test_store import ModelTestStore

    if tests_path(resolved, name) is None:
        return None
    run_it = f"run 'keel test {name}@{version}'"
    try:
        _, digest = load_tests(resolved, name)
    except SpecError as exc:
        return f"its declared tests cannot be read: {exc.message}"
    run = ModelTestStore(engine).get(name, version)
    if run is None:
        return f"its declared tests ({_field(name)}) were not run on it; {run_it} first"
    if run.tests_digest != digest:
        return (f"its declared tests changed since they were run on it "
                f"({run.run_at:%Y-%m-%d %H:%M} UTC); {run_it} again")
    if not run.passed:
        failed = [r["name"] for r in run.body.get("results", []) if not r.get("passed")]
        return (f"it failed its declared tests ({', '.join(failed)}) when last run; fix the "
                f"model and register a new version, or see 'keel test {name}@{version}'")
    return None


def gate_on_tests(resolved: ResolvedSpec | None,
               engine: Engine) -> Callable[[str, int], str | None] | None:
    """The rollout gate of a project: :func:`refusal` bound to its keel.yaml and store, or
    None without a keel.yaml."""
    if resolved is None:
        return None
    spec = resolved

    def gate(name: str, version: int) -> str | None:
        return refusal(spec, engine, name, version)

    return gate


def stored_run(engine: Engine, name: str, version: int) -> StoredRun | None:
    """The latest test run of a version (``keel models show``), or None."""
    from keelwork.adapters.stores.model_test_store import ModelTestStore

    return ModelTestStore(engine).get(name, version)


__all__ = [
    "gate_on_tests",
    "load_tests",
    "positive_class",
    "refusal",
    "run_tests",
    "run_version_tests",
    "stored_run",
    "tests_path",
]
