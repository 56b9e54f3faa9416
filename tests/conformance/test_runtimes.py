"""Every runtime passes the same suite: load, predict single rows and batches equal to calling the
underlying model directly, records and lists, clear errors for bad input, probabilities, signature,
unload, and concurrent calls.

One case per model shape (all six built-in kinds; torch twice: torch.export and TorchScript;
sklearn twice: tabular and text). A case skips, with the reason, only when its library is missing.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.errors import InvalidInputError, ModelLoadError
from keelwork.types import ModelRuntime

pytestmark = [
    # torch 2.13 deprecates TorchScript; loading a TorchScript file is what the case tests
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
    # mlflow warns about its own type hints while importing mlflow.pyfunc
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]


@dataclass
class Case:
    """One model under test and how to call it without keelwork."""

    built: fm.BuiltModel
    #: Calls the model directly on a list of instances (records / texts); plain Python out.
    reference: Callable[[list[Any]], list[Any]]
    #: Same for probabilities; None when the runtime must report no predict_proba.
    reference_proba: Callable[[list[Any]], list[list[float]]] | None = None
    #: (id, batch, substrings the message must contain).
    bad_inputs: list[tuple[str, list[Any], tuple[str, ...]]] = field(default_factory=list)


# --------------------------------------------------------------------------- cases
def _tabular_bad(built: fm.BuiltModel) -> list[tuple[str, list[Any], tuple[str, ...]]]:
    names = built.feature_names
    assert names is not None
    first = dict(built.sample[0])
    row = [first[n] for n in names]
    missing = {k: v for k, v in first.items() if k != names[-1]}
    wrong_type = {**first, names[0]: "abc"}
    return [
        ("too_few_values", [row, row[:-1]], ("instance 1", str(len(names)))),
        ("too_many_values", [[*row, 1.0]], ("instance 0", str(len(names)))),
        ("wrong_type", [first, wrong_type], ("instance 1", repr(names[0]), "'abc'")),
        ("missing_field", [missing], ("instance 0", repr(names[-1]))),
        ("nested_value", [{**first, names[0]: [1.0, 2.0]}], ("instance 0", repr(names[0]))),
    ]


_TEXT_BAD: list[tuple[str, list[Any], tuple[str, ...]]] = [
    ("number_not_text", ["fine", 42], ("instance 1", "text", "42")),
    ("record_two_fields", [{"title": "a", "body": "b"}], ("instance 0", "one text field")),
    ("null_text", [None], ("instance 0", "null")),
]


def _sklearn_case(directory: Path) -> Case:
    pytest.importorskip("sklearn")
    sio = pytest.importorskip("skops.io")
    pd = pytest.importorskip("pandas")
    built = fm.sklearn_cancer(directory)
    model = sio.load(built.artifact, trusted=[])

    def ref(instances: list[Any]) -> list[Any]:
        return model.predict(pd.DataFrame(instances)).tolist()  # type: ignore[no-any-return]

    def ref_proba(instances: list[Any]) -> list[list[float]]:
        return model.predict_proba(pd.DataFrame(instances)).tolist()  # type: ignore[no-any-return]

    return Case(built, ref, ref_proba, bad_inputs=_tabular_bad(built))


def _sklearn_text_case(directory: Path) -> Case:
    pytest.importorskip("sklearn")
    sio = pytest.importorskip("skops.io")
    built = fm.sklearn_text(directory)
    model = sio.load(built.artifact, trusted=[])
    return Case(built, lambda texts: model.predict(texts).tolist(),
                lambda texts: model.predict_proba(texts).tolist(),
                bad_inputs=list(_TEXT_BAD))


def _onnx_case(directory: Path) -> Case:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    np = pytest.importorskip("numpy")
    built = fm.onnx_iris(directory)
    session = ort.InferenceSession(str(built.artifact), providers=["CPUExecutionProvider"])
    names = built.feature_names or ()

    def run(instances: list[Any]) -> list[Any]:
        x = np.asarray([[r[n] for n in names] for r in instances], dtype=np.float32)
        return session.run(None, {"X": x})  # type: ignore[no-any-return]

    def ref_proba(instances: list[Any]) -> list[list[float]]:
        return [[row[k] for k in sorted(row)] for row in run(instances)[1]]

    return Case(built, lambda inst: run(inst)[0].tolist(), ref_proba,
                bad_inputs=_tabular_bad(built))


def _torch_case(directory: Path, fmt: str) -> Case:
    torch = pytest.importorskip("torch")
    built = fm.torch_model(directory, fmt)
    if fmt == "export":
        module = torch.export.load(str(built.artifact)).module()
    else:
        module = torch.jit.load(str(built.artifact))
    names = built.feature_names or ()

    def ref(instances: list[Any]) -> list[Any]:
        x = torch.tensor([[r[n] for n in names] for r in instances], dtype=torch.float32)
        with torch.inference_mode():
            return module(x).tolist()  # type: ignore[no-any-return]

    return Case(built, ref, None, bad_inputs=_tabular_bad(built))


def _hf_case(directory: Path) -> Case:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    built = fm.hf_text_classifier(directory)
    pipe = transformers.pipeline("text-classification", model=str(built.artifact),
                                 tokenizer=str(built.artifact), device="cpu")

    def ref_proba(texts: list[Any]) -> list[list[float]]:
        labels = [pipe.model.config.id2label[i] for i in sorted(pipe.model.config.id2label)]
        rows = pipe(texts, top_k=None)
        return [[next(d["score"] for d in row if d["label"] == lab) for lab in labels]
                for row in rows]

    return Case(built, lambda texts: pipe(texts), ref_proba,
                bad_inputs=list(_TEXT_BAD))


def _mlflow_case(directory: Path) -> Case:
    pyfunc = pytest.importorskip("mlflow.pyfunc")
    pd = pytest.importorskip("pandas")
    built = fm.mlflow_from_code(directory)
    model = pyfunc.load_model(str(built.artifact))
    return Case(built, lambda inst: list(model.predict(pd.DataFrame(inst))), None,
                bad_inputs=_tabular_bad(built))


def _python_case(directory: Path) -> Case:
    import callables

    built = fm.python_callable(proba_callable="callables:linear_proba",
                               classes=list(callables.CLASSES))
    return Case(built, callables.linear_score, callables.linear_proba,
                bad_inputs=_tabular_bad(built))


CASES: dict[str, Callable[[Path], Case]] = {
    "sklearn": _sklearn_case,
    "sklearn-text": _sklearn_text_case,
    "onnx": _onnx_case,
    "torch-export": lambda d: _torch_case(d, "export"),
    "torch-script": lambda d: _torch_case(d, "torchscript"),
    "hf": _hf_case,
    "mlflow": _mlflow_case,
    "python": _python_case,
}


TABULAR = [name for name in CASES if name not in ("sklearn-text", "hf")]
TEXT = ["sklearn-text", "hf"]


def only(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Run a test on these cases only (the others have no such input shape)."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        test.cases = list(names)  # type: ignore[attr-defined]
        return test

    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case_name" in metafunc.fixturenames:
        names = getattr(metafunc.function, "cases", list(CASES))
        metafunc.parametrize("case_name", names, scope="module")


class Suite:
    """Builds each case's model once per module and loads one shared runtime for it."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._cases: dict[str, Case] = {}
        self._runtimes: dict[str, ModelRuntime] = {}

    def case(self, name: str) -> Case:
        if name not in self._cases:
            import sys

            sys.path.insert(0, str(fm.FIXTURES_DIR))  # `import callables` (python case)
            try:
                self._cases[name] = CASES[name](self._tmp.mktemp(name))
            finally:
                sys.path.remove(str(fm.FIXTURES_DIR))
        return self._cases[name]

    def runtime(self, name: str) -> ModelRuntime:
        if name not in self._runtimes:
            self._runtimes[name] = _load(self.case(name))
        return self._runtimes[name]

    def close(self) -> None:
        for rt in self._runtimes.values():
            rt.unload()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    s = Suite(tmp_path_factory)
    yield s
    s.close()


@pytest.fixture
def case(suite: Suite, case_name: str) -> Case:
    return suite.case(case_name)


@pytest.fixture
def runtime(suite: Suite, case_name: str) -> ModelRuntime:
    return suite.runtime(case_name)


def _load(case: Case) -> ModelRuntime:
    from keelwork.adapters.runtimes import load_runtime

    b = case.built
    return load_runtime(b.kind, b.artifact, b.options, allow_unsafe_pickle=b.allow_unsafe_pickle)


# --------------------------------------------------------------------------- helpers
def _assert_same(got: Any, expected: Any, where: str = "output") -> None:
    """Equal, with a relative tolerance of 1e-4 on floats (batching may pad inputs)."""
    if isinstance(expected, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), (where, got)
        assert math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6), (where, got, expected)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (where, got, expected)
        for k in expected:
            _assert_same(got[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(expected), (where, got, expected)
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same(g, e, f"{where}[{i}]")
    else:
        assert got == expected, (where, got, expected)


def _assert_plain(value: Any, where: str = "output") -> None:
    """Only plain JSON types: no numpy/torch scalars slipping through (np.float64 included)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str, (where, k)
            _assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), (where, type(value))


# --------------------------------------------------------------------------- the suite
def test_loads_and_conforms_to_the_protocol(case: Case, runtime: ModelRuntime) -> None:
    assert isinstance(runtime, ModelRuntime)
    assert runtime.kind == case.built.kind


def test_single_instance_matches_the_model(case: Case, runtime: ModelRuntime) -> None:
    first = [case.built.sample[0]]
    out = runtime.predict(first)
    assert len(out) == 1
    _assert_same(out, case.reference(list(first)))


def test_batch_gives_one_output_per_instance_equal_to_the_model(
        case: Case, runtime: ModelRuntime) -> None:
    sample = list(case.built.sample)
    out = runtime.predict(sample)
    assert len(out) == len(sample) > 1
    _assert_same(out, case.reference(sample))
    _assert_plain(out)
    json.dumps(out, allow_nan=False)


def test_batch_equals_row_by_row(case: Case, runtime: ModelRuntime) -> None:
    sample = list(case.built.sample)
    _assert_same(runtime.predict(sample), [runtime.predict([s])[0] for s in sample])


def test_tuple_batch_is_accepted(case: Case, runtime: ModelRuntime) -> None:
    sample = case.built.sample[:2]
    _assert_same(runtime.predict(sample), runtime.predict(list(sample)))


def test_empty_batch_gives_no_outputs(case_name: str, runtime: ModelRuntime) -> None:
    assert runtime.predict([]) == []
    assert runtime.predict_proba([]) in ([], None)


@only(*TABULAR)
def test_records_and_lists_give_the_same_outputs(case: Case, runtime: ModelRuntime) -> None:
    names = case.built.feature_names
    assert names is not None
    assert runtime.signature.feature_names == names
    records = list(case.built.sample)
    rows = [[r[n] for n in names] for r in records]
    shuffled = [dict(reversed(list(r.items()))) for r in records]  # key order must not matter
    _assert_same(runtime.predict(rows), runtime.predict(records))
    _assert_same(runtime.predict(shuffled), runtime.predict(records))


@only(*TABULAR)
def test_extra_record_fields_are_ignored(case: Case, runtime: ModelRuntime) -> None:
    records = list(case.built.sample[:3])
    extended = [{**r, "request_note": "ignored"} for r in records]
    _assert_same(runtime.predict(extended), runtime.predict(records))


@only(*TEXT)
def test_text_record_with_one_field_is_a_text(case: Case, runtime: ModelRuntime) -> None:
    texts = list(case.built.sample)
    _assert_same(runtime.predict([{"review": t} for t in texts]), runtime.predict(texts))


@pytest.mark.parametrize("batch", ["not a batch", {"a": 1.0}, 3.5],
                         ids=["string", "record", "number"])
def test_a_batch_must_be_a_list(case_name: str, runtime: ModelRuntime, batch: Any) -> None:
    with pytest.raises(InvalidInputError, match="batch must be a list"):
        runtime.predict(batch)


def test_bad_input_raises_a_clear_invalid_input_error(case: Case, runtime: ModelRuntime) -> None:
    assert case.bad_inputs, "every case declares bad inputs"
    for name, batch, needles in case.bad_inputs:
        with pytest.raises(InvalidInputError) as info:
            runtime.predict(batch)
        message = str(info.value)
        for needle in needles:
            assert needle.lower() in message.lower(), (name, needle, message)
        assert "Traceback" not in message and "numpy" not in message, (name, message)
        # the batch is rejected before the model runs: no chained library exception
        assert not isinstance(info.value.__cause__, (TypeError, AttributeError)), name


def test_predict_proba_shape(case: Case, runtime: ModelRuntime) -> None:
    sample = list(case.built.sample)
    proba = runtime.predict_proba(sample)
    if case.reference_proba is None:
        assert proba is None
        return
    assert proba is not None
    classes = runtime.signature.classes
    assert classes is not None and len(classes) >= 2
    assert len(proba) == len(sample)
    for row in proba:
        assert len(row) == len(classes)
        assert math.isclose(sum(row), 1.0, rel_tol=1e-4)
    _assert_plain(proba)
    _assert_same(proba, case.reference_proba(sample))


def test_signature_reports_inputs_and_outputs(case_name: str, runtime: ModelRuntime) -> None:
    sig = runtime.signature
    assert sig.inputs and sig.outputs
    assert all(t.name and t.dtype for t in (*sig.inputs, *sig.outputs))
    doc = sig.as_dict()
    json.dumps(doc)
    assert doc["inputs"][0]["shape"][0] == -1  # the batch axis is variable


def test_unload_then_predict_fails_cleanly(case: Case) -> None:
    rt = _load(case)
    rt.unload()
    rt.unload()  # twice is harmless
    with pytest.raises(ModelLoadError, match="not loaded"):
        rt.predict(list(case.built.sample[:1]))


def test_concurrent_predictions_from_four_threads(case: Case, runtime: ModelRuntime) -> None:
    sample = list(case.built.sample)
    expected = runtime.predict(sample)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                results.append(runtime.predict(sample))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(results) == 40
    for got in results:
        _assert_same(got, expected)
