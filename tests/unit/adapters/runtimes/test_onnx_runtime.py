"""The ONNX runtime: skl2onnx outputs, declared shapes, several inputs, broken files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime
from keelwork.errors import InvalidInputError, ModelLoadError

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("skl2onnx")
np = pytest.importorskip("numpy")


def _save(model: Any, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _graph(tmp_path: Path, name: str, inputs: list[Any], nodes: list[Any],
           outputs: list[Any]) -> Path:
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return _save(model, tmp_path / f"{name}.onnx")


def test_zipmap_and_tensor_probabilities_agree(tmp_path: Path) -> None:
    with_map = fm.onnx_iris(tmp_path, zipmap=True)
    with_tensor = fm.onnx_iris(tmp_path, zipmap=False)
    a = load_runtime("onnx", with_map.artifact, with_map.options)
    b = load_runtime("onnx", with_tensor.artifact, with_tensor.options)
    sample = list(with_map.sample)
    assert a.predict(sample) == b.predict(sample)
    assert np.allclose(a.predict_proba(sample), b.predict_proba(sample))
    assert a.signature.classes == b.signature.classes == (0, 1, 2)
    assert b.signature.extra == {"output": "label", "proba_output": "probabilities"}


def test_float64_values_are_cast_to_the_declared_float32(tmp_path: Path) -> None:
    built = fm.onnx_iris(tmp_path)
    rt = load_runtime("onnx", built.artifact)
    x, _ = fm.iris_data()  # float64
    session = ort.InferenceSession(str(built.artifact), providers=["CPUExecutionProvider"])
    expected = session.run(["output_label"], {"X": x[:7].astype(np.float32)})[0].tolist()
    assert rt.predict(x[:7].tolist()) == expected
    assert rt.signature.inputs[0].dtype == "FP32"
    assert rt.signature.inputs[0].shape == (-1, 4)


def test_declared_feature_count_is_enforced_before_the_session(tmp_path: Path) -> None:
    rt = load_runtime("onnx", fm.onnx_iris(tmp_path).artifact)
    with pytest.raises(InvalidInputError, match=r"Instance 0 must be a record or a list of 4"):
        rt.predict([[1.0, 2.0, 3.0]])


def test_options_must_name_real_outputs(tmp_path: Path) -> None:
    built = fm.onnx_iris(tmp_path)
    with pytest.raises(ModelLoadError, match=r"'logits', which is not an output.*output_label"):
        load_runtime("onnx", built.artifact, {"output": "logits"})
    with pytest.raises(ModelLoadError, match=r"lists 2 names but the ONNX model"):
        load_runtime("onnx", built.artifact, {"feature_names": ["a", "b"]})


def test_an_output_option_selects_what_predict_returns(tmp_path: Path) -> None:
    built = fm.onnx_iris(tmp_path, zipmap=False)
    rt = load_runtime("onnx", built.artifact, {**built.options, "output": "probabilities"})
    out = rt.predict(list(built.sample[:2]))
    assert len(out) == 2 and len(out[0]) == 3 and abs(sum(out[0]) - 1.0) < 1e-5


def test_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage that is not a protobuf")
    with pytest.raises(ModelLoadError) as info:
        load_runtime("onnx", path)
    assert str(path) in str(info.value)


def test_several_inputs_take_records_keyed_by_input_name(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    path = _graph(
        tmp_path, "add",
        [helper.make_tensor_value_info("left", TensorProto.FLOAT, [None, 2]),
         helper.make_tensor_value_info("right", TensorProto.FLOAT, [None, 2])],
        [helper.make_node("Add", ["left", "right"], ["sum"])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])])
    rt = load_runtime("onnx", path)
    assert rt.signature.feature_names == ("left", "right")
    assert rt.predict([{"left": [1, 2], "right": [10, 20]}, {"left": [0, 0], "right": [1, 1]}]) \
        == [[11.0, 22.0], [1.0, 1.0]]
    with pytest.raises(InvalidInputError, match=r"it lacks 'right'"):
        rt.predict([{"left": [1, 2]}])
    with pytest.raises(InvalidInputError, match=r"must have shape \(2\); got \(3\)"):
        rt.predict([{"left": [1, 2, 3], "right": [1, 2, 3]}])
    assert rt.predict_proba([{"left": [1, 2], "right": [1, 2]}]) is None


def test_a_fixed_batch_of_one_runs_row_by_row(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    path = _graph(
        tmp_path, "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_node("Add", ["x", "x"], ["y"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    rt = load_runtime("onnx", path, {"feature_names": ["a", "b", "c"]})
    assert rt.predict([[1, 2, 3], {"a": 0.5, "b": 0, "c": -1}]) == [[2, 4, 6], [1, 0, -2]]


def test_tensor_inputs_are_checked_against_the_declared_shape(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    path = _graph(
        tmp_path, "image_sum",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 2, 2])],
        [helper.make_node("ReduceSum", ["image"], ["total"], keepdims=0)],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [])])
    rt = load_runtime("onnx", path)
    assert rt.signature.inputs[0].shape == (-1, 2, 2)
    with pytest.raises(InvalidInputError, match=r"shape \(2, 2\); got \(2, 3\)"):
        rt.predict([[[1, 2, 3], [4, 5, 6]]])
    with pytest.raises(InvalidInputError, match=r"not numbers"):
        rt.predict([[["a", "b"], ["c", "d"]]])
