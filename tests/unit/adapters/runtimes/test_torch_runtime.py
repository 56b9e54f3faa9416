"""The PyTorch runtime: formats, pickle gating, declared shapes, classes and probabilities."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime
from keelwork.adapters.runtimes.base import UnsafePickleWarning
from keelwork.errors import InvalidInputError, ModelLoadError, PredictionError, UnsafeArtifactError

torch = pytest.importorskip("torch")

pytestmark = [
    # torch 2.13 deprecates TorchScript; loading TorchScript files is what some tests check
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]


def _reference(built: fm.BuiltModel, rows: list[list[float]]) -> list[Any]:
    with torch.inference_mode():
        return fm.tiny_net()(torch.tensor(rows, dtype=torch.float32)).tolist()  # type: ignore[no-any-return]


def _rows(n: int = 5) -> list[list[float]]:
    x, _ = fm.iris_data()
    return x[::30][:n].tolist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", ["export", "torchscript"])
def test_formats_are_read_from_the_file(tmp_path: Path, fmt: str) -> None:
    built = fm.torch_model(tmp_path, fmt)
    renamed = tmp_path / "model.bin"  # the suffix does not decide (except .pt2)
    renamed.write_bytes(Path(built.artifact).read_bytes())
    rt = load_runtime("torch", renamed if fmt == "torchscript" else built.artifact)
    assert rt.signature.extra["format"] == fmt
    out = rt.predict(_rows())
    ref = _reference(built, _rows())
    assert len(out) == len(ref)
    assert all(abs(a - b) < 1e-5 for r, e in zip(out, ref, strict=True)
               for a, b in zip(r, e, strict=True))


def test_whole_module_pickles_are_refused_without_the_opt_in(tmp_path: Path) -> None:
    built = fm.torch_model(tmp_path, "pickle")
    with pytest.raises(UnsafeArtifactError, match=r"tiny_pickled.pt.*allow_unsafe_pickle"):
        load_runtime("torch", built.artifact)


def test_allowed_pickles_load_with_a_loud_warning(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    built = fm.torch_model(tmp_path, "pickle")
    with caplog.at_level(logging.WARNING, logger="keelwork.runtimes"), \
            pytest.warns(UnsafePickleWarning, match=r"tiny_pickled.pt"):
        rt = load_runtime("torch", built.artifact, allow_unsafe_pickle=True)
    assert any("tiny_pickled.pt" in r.getMessage() for r in caplog.records)
    assert rt.signature.extra["format"] == "pickle"
    assert len(rt.predict(_rows(2))) == 2


def test_a_state_dict_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(fm.tiny_net().state_dict(), str(path))
    with pytest.warns(UnsafePickleWarning), pytest.raises(ModelLoadError, match=r"state_dict"):
        load_runtime("torch", path, allow_unsafe_pickle=True)


def test_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    built = fm.torch_model(tmp_path, "export")
    broken = tmp_path / "broken.pt2"
    broken.write_bytes(Path(built.artifact).read_bytes()[:300])
    with pytest.raises(ModelLoadError) as info:
        load_runtime("torch", broken)
    assert str(broken) in str(info.value)


def test_exported_shapes_are_enforced_before_the_model_runs(tmp_path: Path) -> None:
    rt = load_runtime("torch", fm.torch_model(tmp_path, "export").artifact)
    assert rt.signature.inputs[0].shape == (-1, 4)
    assert rt.signature.outputs[0].shape == (-1, 3)
    with pytest.raises(InvalidInputError, match=r"Instance 0 must be a record or a list of 4"):
        rt.predict([[1.0, 2.0]])


def test_torchscript_without_shapes_lets_the_model_decide(tmp_path: Path) -> None:
    built = fm.torch_model(tmp_path, "torchscript")
    rt = load_runtime("torch", built.artifact)
    with pytest.raises(InvalidInputError, match=r"does not know its feature names"):
        rt.predict([built.sample[0]])
    with pytest.raises(PredictionError, match=r"'tiny_script.pt' raised") as info:
        rt.predict([[1.0, 2.0]])
    assert info.value.__cause__ is not None
    shaped = load_runtime("torch", built.artifact, {"input_shape": [4]})
    with pytest.raises(InvalidInputError, match=r"list of 4 values"):
        shaped.predict([[1.0, 2.0]])


def test_a_static_batch_other_than_one_is_refused_at_load(tmp_path: Path) -> None:
    program = torch.export.export(fm.tiny_net(), (torch.randn(2, 4),))
    path = tmp_path / "static.pt2"
    torch.export.save(program, str(path))
    with pytest.raises(ModelLoadError, match=r"batches of exactly 2.*Dim"):
        load_runtime("torch", path)


def test_a_static_batch_of_one_runs_row_by_row(tmp_path: Path) -> None:
    program = torch.export.export(fm.tiny_net(), (torch.randn(1, 4),))
    path = tmp_path / "single.pt2"
    torch.export.save(program, str(path))
    rt = load_runtime("torch", path)
    out = rt.predict(_rows(3))
    ref = _reference(fm.torch_model(tmp_path, "export"), _rows(3))
    assert all(abs(a - b) < 1e-5 for r, e in zip(out, ref, strict=True)
               for a, b in zip(r, e, strict=True))


def test_classes_turn_logits_into_labels_and_probabilities(tmp_path: Path) -> None:
    built = fm.torch_model(tmp_path, "export")
    rt = load_runtime("torch", built.artifact, {**built.options,
                                                "classes": ["setosa", "versicolor", "virginica"]})
    logits = torch.tensor(_reference(built, _rows()))
    expected = [["setosa", "versicolor", "virginica"][i] for i in logits.argmax(-1).tolist()]
    assert rt.predict(_rows()) == expected
    proba = rt.predict_proba(_rows())
    assert proba is not None
    assert torch.allclose(torch.tensor(proba), logits.softmax(-1), atol=1e-6)
    assert rt.signature.classes == ("setosa", "versicolor", "virginica")
    sigmoid = load_runtime("torch", built.artifact, {"classes": [0, 1, 2], "proba": "sigmoid"})
    assert torch.allclose(torch.tensor(sigmoid.predict_proba(_rows())), logits.sigmoid(),
                          atol=1e-6)


def test_several_inputs_take_records(tmp_path: Path) -> None:
    class Pair(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return a + b, (a * b).sum(-1)

    batch = torch.export.Dim("batch")
    program = torch.export.export(Pair(), (torch.ones(2, 3), torch.ones(2, 3)),
                                  dynamic_shapes={"a": {0: batch}, "b": {0: batch}})
    path = tmp_path / "pair.pt2"
    torch.export.save(program, str(path))
    rt = load_runtime("torch", path)
    assert [t.name for t in rt.signature.inputs] == ["a", "b"]
    out = rt.predict([{"a": [1, 2, 3], "b": [1, 1, 1]}, {"a": [0, 0, 1], "b": [2, 2, 2]}])
    assert out == [[[2.0, 3.0, 4.0], 6.0], [[2.0, 2.0, 3.0], 2.0]]
    with pytest.raises(InvalidInputError, match=r"it lacks 'b'"):
        rt.predict([{"a": [1, 2, 3]}])
