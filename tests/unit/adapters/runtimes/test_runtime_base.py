"""The shared conversion helpers and the base class of every runtime."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.adapters.runtimes.base import (
    BaseRuntime,
    RuntimeConfig,
    UnsafePickleWarning,
    as_batch,
    numeric_matrix,
    oip_dtype,
    one_per_instance,
    parse_options,
    refuse_or_warn_pickle,
    tensor_batch,
    text_batch,
    to_jsonable,
)
from keelwork.errors import (
    InvalidInputError,
    ModelLoadError,
    PredictionError,
    UnsafeArtifactError,
)

np = pytest.importorskip("numpy")

NAMES = ("age", "income", "score")


# --------------------------------------------------------------------------- numeric_matrix
def test_records_become_rows_in_feature_order() -> None:
    x = numeric_matrix([{"score": 3, "age": 1, "income": 2.5, "extra": "ignored"}],
                       feature_names=NAMES, n_features=3)
    assert x.dtype == np.float64 and x.tolist() == [[1.0, 2.5, 3.0]]


def test_lists_and_records_mix_in_one_batch() -> None:
    x = numeric_matrix([[1, 2, 3], {"age": 4, "income": 5, "score": 6}, (7, 8, 9)],
                       feature_names=NAMES, n_features=3, dtype="float32")
    assert x.dtype == np.float32 and x.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_a_one_feature_model_takes_scalars() -> None:
    assert numeric_matrix([1, 2.5], feature_names=None, n_features=1).tolist() == [[1.0], [2.5]]


def test_null_is_a_missing_value_and_booleans_are_numbers() -> None:
    x = numeric_matrix([[None, True, 2]], feature_names=NAMES, n_features=3)
    assert math.isnan(x[0, 0]) and x[0, 1:].tolist() == [1.0, 2.0]


def test_missing_feature_is_named() -> None:
    with pytest.raises(InvalidInputError) as info:
        numeric_matrix([[1, 2, 3], {"age": 1}], feature_names=NAMES, n_features=3)
    assert str(info.value).startswith("Instance 1 is missing the feature 'income' (and 1 more)")
    assert [d.path for d in info.value.details] == ["instances[1].income", "instances[1].score"]


@pytest.mark.parametrize(("batch", "needle"), [
    ([[1, 2, 3], [1, 2]], "Instance 1 must be a record or a list of 3 values (one per feature: "
                          "'age', 'income', 'score'); got 2 values."),
    ([[1, 2, 3, 4]], "Instance 0 must be a record or a list of 3 values"),
    ([5.0], "Instance 0 must be a record or a list of 3 values"),
    ([[1, "x", 3]], "The feature 'income' of instance 0 must be a number; got 'x' (str)."),
    ([[1, 2, [3]]], "The feature 'score' of instance 0 must be a number; got a list of 1 values."),
    ([[1, 2, {"a": 1}]], "The feature 'score' of instance 0 must be a number; got a record"),
    ([[1, 2, 3], "text"], "Instance 1 must be a record or a list of 3 values"),
])
def test_shape_and_type_problems_are_clear(batch: list[Any], needle: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        numeric_matrix(batch, feature_names=NAMES, n_features=3)
    assert needle in str(info.value)


def test_records_need_feature_names() -> None:
    with pytest.raises(InvalidInputError, match=r"does not know its feature names.*"
                                                r"options.feature_names"):
        numeric_matrix([{"a": 1}], feature_names=None, n_features=1)


def test_a_wide_model_abbreviates_the_feature_list() -> None:
    names = tuple(f"f{i}" for i in range(30))
    with pytest.raises(InvalidInputError) as info:
        numeric_matrix([[1.0]], feature_names=names, n_features=30)
    assert "'f5' and 24 more" in str(info.value)


@given(st.lists(st.lists(st.floats(allow_nan=False, width=64), min_size=3, max_size=3),
                min_size=1, max_size=20))
def test_records_and_rows_give_the_same_matrix(rows: list[list[float]]) -> None:
    records = [dict(zip(NAMES, r, strict=True)) for r in rows]
    a = numeric_matrix(rows, feature_names=NAMES, n_features=3)
    b = numeric_matrix(records, feature_names=NAMES, n_features=3)
    assert a.shape == (len(rows), 3) and np.array_equal(a, b)


def test_an_empty_batch_is_an_empty_matrix() -> None:
    assert numeric_matrix([], feature_names=NAMES, n_features=3).shape == (0, 3)


# --------------------------------------------------------------------- batches, texts, tensors
@pytest.mark.parametrize("batch", ["abc", b"abc", {"a": 1}, 3, None])
def test_a_batch_must_be_a_list(batch: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"The batch must be a list of instances"):
        as_batch(batch)


def test_a_tuple_batch_becomes_a_list() -> None:
    assert as_batch((1, 2)) == [1, 2]


def test_text_batch_takes_strings_and_one_field_records() -> None:
    assert text_batch(["a", {"review": "b"}]) == ["a", "b"]
    assert text_batch([{"title": "t", "body": "b"}], text_field="body") == ["b"]


@pytest.mark.parametrize(("batch", "field", "needle"), [
    ([1], None, "Instance 0 must be a text (a string); got 1 (int)."),
    ([{"a": "x", "b": "y"}], None, "exactly one text field; got a record with 2 fields"),
    ([{"a": "x"}], "body", "Instance 0 is missing the text field 'body'"),
    ([{"body": 3}], "body", "Instance 0 must be a text (a string); got 3 (int)."),
])
def test_text_problems_are_clear(batch: list[Any], field: str | None, needle: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        text_batch(batch, text_field=field)
    assert needle in str(info.value)


def test_tensor_batch_checks_the_declared_shape() -> None:
    images = [[[0.0] * 3] * 2, [[1.0] * 3] * 2]
    assert tensor_batch(images, (2, 3), "float32").shape == (2, 2, 3)
    assert tensor_batch(images, (None, 3), "float32").shape == (2, 2, 3)
    with pytest.raises(InvalidInputError, match=r"shape \(2, 4\); got \(2, 3\) \(axis 2 must"):
        tensor_batch(images, (2, 4), "float32")
    with pytest.raises(InvalidInputError, match=r"must have shape \(6\); got \(2, 3\)"):
        tensor_batch(images, (6,), "float32")
    with pytest.raises(InvalidInputError, match=r"not numbers or lists of different lengths"):
        tensor_batch([[1.0, 2.0], [1.0]], (2,), "float32")


# --------------------------------------------------------------------------- outputs
def test_outputs_become_plain_python() -> None:
    out = to_jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": (np.int64(2), "x"),
                       "d": np.array([{"k": np.float64(0.5)}], dtype=object)})
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": [2, "x"], "d": [{"k": 0.5}]}
    assert type(out["a"]) is float and type(out["b"][0]) is int
    assert type(out["d"][0]["k"]) is float


def test_exactly_one_output_per_instance() -> None:
    assert one_per_instance(np.array([1, 2]), 2, kind="x") == [1, 2]
    with pytest.raises(PredictionError, match=r"returned 1 predictions for a batch of 2"):
        one_per_instance([1], 2, kind="x", what="predictions")
    with pytest.raises(PredictionError, match=r"returned a single float64"):
        one_per_instance(np.float64(1.0), 2, kind="x")


def test_oip_dtypes() -> None:
    assert [oip_dtype(np.dtype(t)) for t in ("f4", "f8", "i8", "u1", "?", "U3", "O")] == [
        "FP32", "FP64", "INT64", "UINT8", "BOOL", "BYTES", "BYTES"]


# --------------------------------------------------------------------------- options, base class
class _Cfg(RuntimeConfig):
    threshold: float = 0.5


def test_parse_options_lists_every_problem() -> None:
    with pytest.raises(ModelLoadError) as info:
        parse_options(_Cfg, {"threshold": "high", "colour": 1}, "demo")
    message = str(info.value)
    assert "Invalid options for the 'demo' runtime" in message
    assert "option 'threshold'" in message and "got 'high'" in message
    assert "unknown option 'colour' (valid options: threshold)" in message
    assert len(info.value.details) == 2


def test_base_runtime_hooks_are_no_ops(tmp_path: Path) -> None:
    rt = BaseRuntime(tmp_path / "m.bin", None, allow_unsafe_pickle=True)
    assert rt.options == {} and rt.allow_unsafe_pickle and rt.path == tmp_path / "m.bin"
    rt.load()
    assert rt.predict_proba([1]) is None
    assert rt.signature.inputs == () and rt.signature.outputs == ()
    rt.unload()
    with pytest.raises(NotImplementedError):
        rt.predict([1])


def test_model_errors_become_prediction_errors_with_the_cause(tmp_path: Path) -> None:
    rt = BaseRuntime(tmp_path / "m.bin")
    with pytest.raises(PredictionError) as info, rt.model_errors():
        raise KeyError("hidden_layer")
    assert "'m.bin' raised KeyError while predicting: 'hidden_layer'" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(InvalidInputError), rt.model_errors():
        raise InvalidInputError("ours, passed through")


def test_pickles_are_refused_without_the_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    with pytest.raises(UnsafeArtifactError) as info:
        refuse_or_warn_pickle(path, False, "sklearn")
    message = str(info.value)
    assert str(path) in message and "allow_unsafe_pickle: true" in message
    assert isinstance(info.value, PermissionError) and isinstance(info.value, ModelLoadError)


def test_allowed_pickles_warn_loudly_twice(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "model.pkl"
    with caplog.at_level(logging.WARNING, logger="keelwork.runtimes"), \
            pytest.warns(UnsafePickleWarning, match=r"runs arbitrary code"):
        refuse_or_warn_pickle(path, True, "sklearn")
    assert issubclass(UnsafePickleWarning, UserWarning)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert str(path) in caplog.records[0].getMessage()
