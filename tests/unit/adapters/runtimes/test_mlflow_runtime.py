"""The MLflow runtime: pickled flavors gated, signatures drive the input frame, bad dirs."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime
from keelwork.adapters.runtimes.base import UnsafePickleWarning
from keelwork.errors import InvalidInputError, ModelLoadError, UnsafeArtifactError

pyfunc = pytest.importorskip("mlflow.pyfunc")
pd = pytest.importorskip("pandas")

pytestmark = [
    # mlflow warns about its own type hints while importing mlflow.pyfunc
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]


def _save(directory: Path, code: str, signature: Any = None, name: str = "m") -> Path:
    """Save a pyfunc from code (``code`` defines Model and calls set_model)."""
    source = directory / f"{name}.py"
    source.write_text(code, encoding="utf-8")
    path = directory / name
    with warnings.catch_warnings():  # saving is set-up, not under test
        warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
        pyfunc.save_model(str(path), python_model=str(source), signature=signature)
    return path


def test_models_saved_from_code_load_without_the_opt_in(tmp_path: Path) -> None:
    built = fm.mlflow_from_code(tmp_path)
    rt = load_runtime("mlflow", built.artifact)
    assert rt.signature.feature_names == ("a", "b", "c")
    assert rt.signature.extra["flavors"] == ["python_function"]
    assert rt.predict([{"a": 1, "b": 2, "c": 4}, [0, 0, 2]]) == [2.0, 1.0]


def test_pickled_models_are_refused_without_the_opt_in(tmp_path: Path) -> None:
    built = fm.mlflow_pickled(tmp_path)
    with pytest.raises(UnsafeArtifactError, match=r"python_model.pkl.*allow_unsafe_pickle"):
        load_runtime("mlflow", built.artifact)


def test_allowed_pickled_models_load_with_a_loud_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    built = fm.mlflow_pickled(tmp_path)
    with caplog.at_level(logging.WARNING, logger="keelwork.runtimes"), \
            pytest.warns(UnsafePickleWarning, match=r"python_model.pkl"):
        rt = load_runtime("mlflow", built.artifact, allow_unsafe_pickle=True)
    assert any("python_model.pkl" in r.getMessage() for r in caplog.records)
    assert rt.predict([{"a": 1.0, "b": 1.0, "c": 2.0}]) == [2.0]


def test_a_directory_without_mlmodel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no MLmodel file"):
        load_runtime("mlflow", tmp_path)


def test_a_broken_mlmodel_names_the_directory(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: nowhere}}\n")
    with pytest.raises(ModelLoadError) as info:
        load_runtime("mlflow", tmp_path)
    assert str(tmp_path) in str(info.value)


_INT_MODEL = '''\
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class Model(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[str]:
        return [f"{n}x{w}" for n, w in zip(model_input["count"], model_input["word"])]


mlflow.models.set_model(Model())
'''


def test_mixed_signatures_keep_strings_and_mlflow_checks_them(tmp_path: Path) -> None:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    sig = ModelSignature(inputs=Schema([ColSpec("long", "count"), ColSpec("string", "word")]),
                         outputs=Schema([ColSpec("string")]))
    rt = load_runtime("mlflow", _save(tmp_path, _INT_MODEL, sig))
    assert rt.predict([{"word": "hi", "count": 2}, [3, "yo"]]) == ["2xhi", "3xyo"]
    with pytest.raises(InvalidInputError, match=r"rejected the input"):
        rt.predict([{"word": "hi", "count": "many"}])
    with pytest.raises(InvalidInputError, match=r"missing the feature 'word'"):
        rt.predict([{"count": 2}])
    with pytest.raises(InvalidInputError, match=r"list of 2 values"):
        rt.predict([[1, "a", "extra"]])


_SUM_MODEL = '''\
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class Model(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"total": model_input.sum(axis=1), "n": model_input.shape[1]})


mlflow.models.set_model(Model())
'''


def test_integer_columns_must_get_integers(tmp_path: Path) -> None:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    sig = ModelSignature(inputs=Schema([ColSpec("long", "a"), ColSpec("double", "b")]))
    rt = load_runtime("mlflow", _save(tmp_path, _SUM_MODEL, sig))
    # a DataFrame with several columns becomes one record per instance
    assert rt.predict([[1, 0.5], {"a": 2.0, "b": 1.0}]) == [
        {"total": 1.5, "n": 2}, {"total": 3.0, "n": 2}]
    with pytest.raises(InvalidInputError, match=r"'a' of instance 1 must be an integer; got 1.5"):
        rt.predict([[1, 0.5], [1.5, 0.5]])


def test_models_without_a_signature_take_records_as_they_are(tmp_path: Path) -> None:
    rt = load_runtime("mlflow", _save(tmp_path, _SUM_MODEL))
    assert rt.signature.feature_names is None
    assert rt.predict([{"x": 1, "y": 2}, {"x": 3, "y": 4}]) == [
        {"total": 3, "n": 2}, {"total": 7, "n": 2}]
    assert rt.predict_proba([{"x": 1}]) is None


class _Payload:
    """Unpickling it creates ``marker``: proof that the file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


_SKLEARN_MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: {name}
    python_version: 3.11.0
  sklearn:
    pickled_model: {name}
    serialization_format: cloudpickle
    sklearn_version: 1.5.0
mlflow_version: 2.16.0
"""


def _sklearn_dir(directory: Path, name: str, payload: Any, protocol: int = 4) -> Path:
    """An MLflow sklearn model whose pickle is stored as ``name`` (any name, no suffix)."""
    import pickle

    path = directory / "model"
    path.mkdir()
    (path / name).write_bytes(pickle.dumps(payload, protocol=protocol))
    (path / "MLmodel").write_text(_SKLEARN_MLMODEL.format(name=name), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["model.dat", "model"])
def test_pickles_under_any_name_are_refused_before_they_run(tmp_path: Path, name: str) -> None:
    from keelwork.adapters.runtimes.mlflow import MlflowRuntime

    marker = tmp_path / "ran"
    path = _sklearn_dir(tmp_path, name, _Payload(marker))
    assert MlflowRuntime.pickled_parts(path, {}) == [path / name]
    with pytest.raises(UnsafeArtifactError, match=rf"{name}'.*allow_unsafe_pickle"):
        load_runtime("mlflow", path)
    assert not marker.exists()


def test_a_pickle_mlmodel_names_is_refused_whatever_its_first_bytes(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # protocol 0 starts with a text opcode, not the 0x80 of later protocols
    path = _sklearn_dir(tmp_path, "weights.bin", _Payload(marker), protocol=0)
    with pytest.raises(UnsafeArtifactError, match=r"weights.bin"):
        load_runtime("mlflow", path)
    assert not marker.exists()


def test_a_pickle_no_flavor_names_is_found_by_its_first_bytes(tmp_path: Path) -> None:
    import pickle

    from keelwork.adapters.runtimes.mlflow import MlflowRuntime

    built = fm.mlflow_from_code(tmp_path)
    hidden = Path(built.artifact) / "artifacts" / "blob"
    hidden.parent.mkdir(exist_ok=True)
    hidden.write_bytes(pickle.dumps(_Payload(tmp_path / "ran")))
    assert MlflowRuntime.pickled_parts(Path(built.artifact), {}) == [hidden]
    with pytest.raises(UnsafeArtifactError, match=r"blob"):
        load_runtime("mlflow", built.artifact)


_SAFE_MLMODELS = {
    "model.skops": "  python_function: {loader_module: mlflow.sklearn, model_path: model.skops}\n"
                   "  sklearn: {pickled_model: model.skops, serialization_format: skops}\n",
    "data/model.pt2": "  python_function: {loader_module: mlflow.pytorch, data: data}\n"
                      "  pytorch: {model_data: data, pytorch_version: 2.8.0}\n",
}


@pytest.mark.parametrize("stored", sorted(_SAFE_MLMODELS))
def test_safe_formats_mlmodel_names_are_not_counted_as_pickles(tmp_path: Path,
                                                               stored: str) -> None:
    from keelwork.adapters.runtimes.mlflow import pickled_files

    (tmp_path / stored).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / stored).write_bytes(b"PK\x03\x04")
    (tmp_path / "MLmodel").write_text("flavors:\n" + _SAFE_MLMODELS[stored], encoding="utf-8")
    assert pickled_files(tmp_path) == []


def test_a_torch_save_mlmodel_names_is_counted_whatever_its_suffix(tmp_path: Path) -> None:
    from keelwork.adapters.runtimes.mlflow import pickled_files

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "weights").write_bytes(b"PK\x03\x04")  # torch.save writes a zip
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  pytorch: {model_data: data/weights, pytorch_version: 2.8.0}\n",
        encoding="utf-8")
    assert pickled_files(tmp_path) == [tmp_path / "data" / "weights"]


@pytest.mark.parametrize("name", ["model.dat", "model"])
def test_pickles_under_any_name_load_with_the_opt_in(tmp_path: Path, name: str) -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    path = _sklearn_dir(tmp_path, name, model)
    with pytest.warns(UnsafePickleWarning, match=name):
        rt = load_runtime("mlflow", path, allow_unsafe_pickle=True)
    assert rt.predict([[3.0]]) == pytest.approx([7.0])
