"""The Python-callable runtime: references, import path, outputs, errors."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime
from keelwork.errors import InvalidInputError, ModelLoadError, PredictionError

PATH = str(fm.FIXTURES_DIR)


def _load(reference: str, **options: Any) -> Any:
    return load_runtime("python", reference, {"path": PATH, **options})


def test_the_function_gets_the_batch_and_returns_one_output_each() -> None:
    rt = _load("callables:echo")
    assert rt.predict(["a", {"b": 1}, [1, 2]]) == ["a", {"b": 1}, [1, 2]]
    assert rt.predict_proba(["a"]) is None
    assert rt.signature.extra == {"callable": "callables:echo"}


def test_the_path_is_on_sys_path_only_while_importing() -> None:
    before = list(sys.path)
    _load("callables:echo")
    assert sys.path == before


def test_options_callable_replaces_the_artifact() -> None:
    rt = load_runtime("python", "", {"path": PATH, "callable": "callables:linear_score"})
    assert rt.predict([[1.0, 0.0, 0.0]]) == [0.5]


def test_feature_names_turn_lists_into_records() -> None:
    rt = _load("callables:echo", feature_names=["a", "b"])
    assert rt.predict([[1, 2], {"b": 3, "a": 4}]) == [{"a": 1, "b": 2}, {"b": 3, "a": 4}]
    with pytest.raises(InvalidInputError, match=r"Instance 0 must be a record or a list of 2"):
        rt.predict([[1, 2, 3]])
    with pytest.raises(InvalidInputError, match=r"Instance 1 is missing the feature 'b'"):
        rt.predict([{"a": 1, "b": 2}, {"a": 1}])
    with pytest.raises(InvalidInputError, match=r"got str"):
        rt.predict(["text"])


def test_invalid_input_raised_by_the_function_passes_through() -> None:
    rt = _load("callables:linear_score")
    with pytest.raises(InvalidInputError, match=r"'b' of instance 0 must be a number"):
        rt.predict([{"a": 1.0, "b": "two", "c": 3.0}])


@pytest.mark.parametrize(("function", "needle"), [
    ("drops_one", "returned 1 outputs for a batch of 2"),
    ("returns_dict", "returned a dict for a batch of 2"),
    ("explodes", "raised ZeroDivisionError while predicting: division by zero"),
])
def test_broken_functions_are_prediction_errors(function: str, needle: str) -> None:
    rt = _load(f"callables:{function}")
    with pytest.raises(PredictionError, match=needle) as info:
        rt.predict([1, 2])
    if function == "explodes":
        assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_an_integer_no_answer_can_carry_is_a_prediction_error() -> None:
    """JSON encoders carry -2**63 .. 2**64-1: past that the answer could not be sent, so the
    model's output is refused as its error (logged as one), not logged as an answer."""
    rt = _load("callables:echo")
    assert rt.predict([-(2**63), 2**64 - 1, [3]]) == [-(2**63), 2**64 - 1, [3]]
    for big in (2**64, -(2**63) - 1, [1, 2**70], {"n": 2**70}):
        with pytest.raises(PredictionError, match=r"beyond the 64 bits an answer carries"):
            rt.predict([big])


def test_probabilities_come_from_the_proba_callable() -> None:
    rt = _load("callables:linear_score", proba_callable="callables:linear_proba",
               classes=["low", "high"])
    proba = rt.predict_proba([[0.0, 0.0, 0.0]])
    assert proba == [[0.5, 0.5]]
    assert rt.signature.classes == ("low", "high")


@pytest.mark.parametrize(("reference", "needle"), [
    ("callables", "in the form 'module:function'; got 'callables'"),
    (":echo", "in the form 'module:function'"),
    ("no_such_module_xyz:f", "Cannot import the module 'no_such_module_xyz'.*options.path"),
    ("callables:missing", "has no attribute 'missing'"),
    ("callables:NOT_CALLABLE", "names a int, not a function"),
])
def test_bad_references_are_model_load_errors(reference: str, needle: str) -> None:
    with pytest.raises(ModelLoadError, match=needle):
        _load(reference)


def test_a_module_that_fails_to_import_is_named(tmp_path: Any) -> None:
    (tmp_path / "broken_model_mod.py").write_text("raise RuntimeError('bad import')\n")
    with pytest.raises(ModelLoadError, match=r"'broken_model_mod'.*RuntimeError: bad import"):
        load_runtime("python", "broken_model_mod:f", {"path": str(tmp_path)})
    assert str(tmp_path) not in sys.path


def test_dotted_attributes_reach_methods() -> None:
    assert _load("callables:Lengths.predict").predict(["abc", 12345]) == [3, 5]
