"""MLflow models (any flavor) through the ``mlflow.pyfunc`` interface.

Input is a pandas DataFrame built from the batch; the column order and types come from the
model's signature when it has one, so numeric columns are checked before MLflow sees them.

Many MLflow flavors store the model as a pickle (``python_model.pkl``, ``model.pkl``, a
``torch.save`` ``.pth``). Loading those runs arbitrary code, so, as for plain pickle files,
they need ``allow_unsafe_pickle``. A file counts as a pickle by its name, by its first bytes,
or because ``MLmodel`` hands it to a flavor that unpickles it, whatever it is called. Models
saved from code (``python_model="model.py"``) hold readable source instead and load without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from keelwork.adapters.runtimes.base import (
    PICKLE_SUFFIXES,
    BaseRuntime,
    RuntimeConfig,
    as_batch,
    import_optional,
    looks_like_pickle,
    numeric_matrix,
    one_per_instance,
    refuse_or_warn_pickle,
    rows_from_instances,
    tensor_batch,
)
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import ErrorDetail, InvalidInputError, ModelLoadError
from keelwork.types import Instance, JSONValue

_PURPOSE = "The 'mlflow' runtime"
#: Files MLflow flavors write with pickle (torch.save writes .pth).
_PICKLED = PICKLE_SUFFIXES | {".pth"}
#: MLflow flavors that unpickle their stored model: flavor -> (the setting naming it, the
#: (setting, value) pairs that say it is stored in a safe format instead).
_PICKLE_FLAVORS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sklearn": ("pickled_model", (("serialization_format", "skops"),)),
    "lightgbm": ("data", (("model_class", "lightgbm.basic.Booster"),
                          ("serialization_format", "skops"))),
    "pytorch": ("model_data", ()),  # a file, or a directory holding model.pth (else model.pt2)
    "statsmodels": ("data", ()),
    "pmdarima": ("pickled_model", ()),
    "fastai": ("data", ()),
    "paddle": ("pickled_model", ()),
    "shap": ("serialized_explainer", ()),
}
#: python_function settings that name the stored model its loader_module loads.
_PYFUNC_DATA_KEYS = ("data", "model_path")
#: What ``mlflow.pytorch`` unpickles in a model directory (a ``model.pt2`` beside is an export).
_TORCH_PICKLE = "model.pth"
#: MLflow column type -> (pandas dtype, Open Inference Protocol name); None = not numeric.
_COLUMN_TYPES: dict[str, tuple[str | None, str]] = {
    "double": ("float64", "FP64"),
    "float": ("float32", "FP32"),
    "long": ("int64", "INT64"),
    "integer": ("int32", "INT32"),
    "boolean": ("bool", "BOOL"),
    "string": (None, "BYTES"),
    "binary": (None, "BYTES"),
    "datetime": (None, "BYTES"),
}


class MlflowConfig(RuntimeConfig):
    """Options of the ``mlflow`` runtime."""

    #: Column order for list instances when the model has no signature.
    feature_names: tuple[str, ...] | None = None


class MlflowRuntime(BaseRuntime):
    """An MLflow model directory (the one holding ``MLmodel``), loaded as a pyfunc.

    Args:
        artifact: The model directory.
        options: See :class:`MlflowConfig`.
        allow_unsafe_pickle: Allow flavors that store pickles (they execute code on load).
    """

    kind = "mlflow"
    config_model: ClassVar[type[RuntimeConfig]] = MlflowConfig
    config: MlflowConfig

    @classmethod
    def pickled_parts(cls, path: Path, options: Mapping[str, Any]) -> list[Path]:
        """The files the model's flavor unpickles (what :meth:`load` refuses)."""
        return pickled_files(path) if path.is_dir() else super().pickled_parts(path, options)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model: Any = None
        self._columns: tuple[str, ...] | None = None
        #: pandas dtype per column; all set = numeric input, checked by keelwork.
        self._dtypes: tuple[str | None, ...] = ()
        self._tensor: tuple[tuple[int | None, ...], str] | None = None

    def load(self) -> None:
        """Load the pyfunc and read its signature.

        Raises:
            UnsafeArtifactError: the model stores pickles and ``allow_unsafe_pickle`` is off.
            ModelLoadError: the directory is not an MLflow model or MLflow cannot load it.
            MissingExtraError: mlflow or pandas is not installed.
        """
        path = self.path
        if not (path / "MLmodel").is_file():
            raise ModelLoadError(
                f"{str(path)!r} is not an MLflow model directory: it has no MLmodel file. "
                "Point the artifact at the directory written by mlflow.<flavor>.save_model."
            )
        pickled = pickled_files(path)
        if pickled:
            refuse_or_warn_pickle(pickled[0], self.allow_unsafe_pickle, self.kind)
        import_optional("pandas", "mlflow", _PURPOSE)
        pyfunc = import_optional("mlflow.pyfunc", "mlflow", _PURPOSE)
        try:
            model = pyfunc.load_model(str(path))
        except Exception as exc:
            raise self.load_error(exc, "load the MLflow model") from exc
        self._model = model
        self._read_schema(model)
        self._signature = self._build_signature(model)
        self._loaded = True

    def _read_schema(self, model: Any) -> None:
        schema = model.metadata.get_input_schema()
        if schema is None:
            self._columns = self.config.feature_names
            return
        if schema.is_tensor_spec():
            if len(schema.inputs) == 1:
                spec = schema.inputs[0]
                shape = tuple(d if d >= 0 else None for d in spec.shape[1:])
                self._tensor = (shape, str(spec.type))
            return
        if schema.has_input_names():
            self._columns = tuple(schema.input_names())
            self._dtypes = tuple(_COLUMN_TYPES.get(c.type.name, (None, ""))[0]
                                 for c in schema.inputs)

    def _build_signature(self, model: Any) -> Signature:
        def specs(schema: Any, default: str) -> tuple[TensorSignature, ...]:
            if schema is None:
                return (TensorSignature(default, "BYTES", (-1,)),)
            out = []
            for i, col in enumerate(schema.inputs):
                name = getattr(col, "name", None) or (default if i == 0 else f"{default}_{i}")
                if schema.is_tensor_spec():
                    dtype = str(col.type)
                    oip = {"float32": "FP32", "float64": "FP64", "int64": "INT64",
                           "int32": "INT32", "bool": "BOOL"}.get(dtype, "BYTES")
                    out.append(TensorSignature(name, oip, tuple(col.shape)))
                else:
                    oip = _COLUMN_TYPES.get(col.type.name, (None, "BYTES"))[1]
                    out.append(TensorSignature(name, oip, (-1,)))
            return tuple(out)

        meta = model.metadata
        return Signature(
            inputs=specs(meta.get_input_schema(), "input"),
            outputs=specs(meta.get_output_schema(), "output"),
            feature_names=self._columns,
            extra={"flavors": sorted(meta.flavors)},
        )

    def unload(self) -> None:
        """Drop the model."""
        self._model = None
        self._loaded = False

    # ------------------------------------------------------------------ predict
    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Call the pyfunc on a DataFrame of the batch; one output per instance.

        Raises:
            InvalidInputError: the batch does not fit the model's signature.
            PredictionError: the model raised.
        """
        model = self._model
        if model is None:
            raise self._not_loaded()
        if not as_batch(instances):
            return []
        data, n = self._frame(instances)
        with self.model_errors():
            try:
                out = model.predict(data)
            except Exception as exc:
                text = str(exc)
                if "Failed to enforce schema" not in text:
                    raise
                # MLflow's own signature check failed: the input is at fault, not the model
                reason = text.rsplit("Error:", 1)[-1].strip()
                raise InvalidInputError(
                    f"The MLflow model {self.path.name!r} rejected the input: {reason}"
                ) from exc
        return self._outputs(out, n)

    def _frame(self, instances: Sequence[Instance]) -> tuple[Any, int]:
        import pandas as pd

        batch = as_batch(instances)
        if self._tensor is not None:
            shape, dtype = self._tensor
            return tensor_batch(batch, shape, dtype), len(batch)
        columns = self._columns
        if columns and self._dtypes and all(self._dtypes):
            matrix = numeric_matrix(batch, feature_names=columns, n_features=len(columns))
            frame = pd.DataFrame(matrix, columns=list(columns), copy=False)
            return self._cast(frame), len(batch)
        if columns is None:
            if batch and all(isinstance(inst, Mapping) for inst in batch):
                return pd.DataFrame.from_records(batch), len(batch)
            return pd.DataFrame(batch), len(batch)
        rows = rows_from_instances(batch, columns)
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)) or len(row) != len(columns):
                got = f"{len(row)} values" if isinstance(row, (list, tuple)) else type(row).__name__
                raise InvalidInputError(
                    f"Instance {i} must be a record or a list of {len(columns)} values "
                    f"({', '.join(columns)}); got {got}.",
                    [ErrorDetail(path=f"instances[{i}]", rule="row_length", got=got)],
                )
        return pd.DataFrame(rows, columns=list(columns)), len(rows)

    def _cast(self, frame: Any) -> Any:
        """Give each numeric column the type the signature declares (integral values only)."""
        import numpy as np

        for column, dtype in zip(frame.columns, self._dtypes, strict=True):
            if dtype is None or dtype.startswith("float"):
                continue
            values = frame[column].to_numpy()
            integral = np.isfinite(values) & (values == np.round(values))
            if dtype != "bool" and not integral.all():
                row = int(np.flatnonzero(~integral)[0])
                bad = float(values[row])
                raise InvalidInputError(
                    f"The feature {column!r} of instance {row} must be an integer; got {bad!r}.",
                    [ErrorDetail(path=f"instances[{row}].{column}", rule="type_integer",
                                 got=bad)],
                )
            frame[column] = values.astype(dtype)
        return frame

    def _outputs(self, out: Any, n: int) -> list[JSONValue]:
        columns = getattr(out, "columns", None)
        if columns is not None:  # a DataFrame
            if len(columns) == 1:
                return one_per_instance(out.iloc[:, 0].to_numpy(), n, kind=self.kind)
            return one_per_instance(out.to_dict(orient="records"), n, kind=self.kind)
        if hasattr(out, "to_numpy"):  # a Series
            return one_per_instance(out.to_numpy(), n, kind=self.kind)
        if isinstance(out, Mapping):
            cols = {str(k): one_per_instance(v, n, kind=self.kind) for k, v in out.items()}
            return [{k: v[i] for k, v in cols.items()} for i in range(n)]
        return one_per_instance(out, n, kind=self.kind)


def pickled_files(path: Path) -> list[Path]:
    """The files of an MLflow model directory that loading may unpickle.

    A file counts when its suffix or first bytes say pickle, or when ``MLmodel`` names it as
    what a pickle-based flavor loads (``pickled_model: model.dat`` of ``sklearn``, a custom
    pyfunc's ``python_model``), whatever its name.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file())
    found = {p for p in files if p.suffix.lower() in _PICKLED or looks_like_pickle(p)}
    found.update(_declared_pickles(path))
    return sorted(found)


def _declared_pickles(root: Path) -> set[Path]:
    """The files ``MLmodel`` hands to a flavor that unpickles them."""
    flavors = _read_flavors(root / "MLmodel")
    found: set[Path] = set()
    for name, conf in flavors.items():
        if name in _PICKLE_FLAVORS and not _safe_format(name, flavors):
            found.update(_named_files(root, conf.get(_PICKLE_FLAVORS[name][0])))
    pyfunc = flavors.get("python_function", {})
    found.update(_named_files(root, pyfunc.get("python_model")))  # a cloudpickled PythonModel
    loader = str(pyfunc.get("loader_module", ""))
    flavor = loader.removeprefix("mlflow.")
    if loader.startswith("mlflow.") and flavor in _PICKLE_FLAVORS \
            and not _safe_format(flavor, flavors):
        for key in _PYFUNC_DATA_KEYS:
            found.update(_named_files(root, pyfunc.get(key)))
    return found


def _read_flavors(mlmodel: Path) -> dict[str, dict[str, Any]]:
    """The ``flavors`` mapping of an MLmodel file; empty when it is missing or unreadable."""
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe", pure=True).load(mlmodel.read_text(encoding="utf-8"))
    except Exception:  # a missing or broken MLmodel fails later, in MLflow, with its own message
        return {}
    flavors = data.get("flavors") if isinstance(data, dict) else None
    if not isinstance(flavors, dict):
        return {}
    return {str(k): v for k, v in flavors.items() if isinstance(v, dict)}


def _safe_format(flavor: str, flavors: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when the flavor's entry names a non-pickle format (a missing entry is unsafe, as
    MLflow then falls back to pickle)."""
    conf = flavors.get(flavor)
    return conf is not None and any(conf.get(k) == v for k, v in _PICKLE_FLAVORS[flavor][1])


def _named_files(root: Path, value: Any) -> list[Path]:
    """The files a flavor setting names: the file itself (wherever it is, as MLflow opens it
    there) or, inside the model directory, a directory's ``model.pth`` (``mlflow.pytorch``) or
    the files sharing a prefix (paddle's ``model`` -> ``model.pdiparams``)."""
    if not isinstance(value, str) or not value:
        return []
    target = root / value
    try:
        if target.is_file():
            return [target]
        if not target.resolve().is_relative_to(root.resolve()):
            return []
        if target.is_dir():
            inner = target / _TORCH_PICKLE
            return [inner] if inner.is_file() else []
        return sorted(p for p in target.parent.glob(f"{target.name}.*") if p.is_file())
    except (OSError, ValueError):  # a name the file system cannot hold names no file
        return []


__all__ = ["MlflowConfig", "MlflowRuntime", "pickled_files"]
