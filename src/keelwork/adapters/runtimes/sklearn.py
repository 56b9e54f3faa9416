"""scikit-learn models saved with skops (or, only when allowed, pickle/joblib).

skops refuses to construct any type it does not trust. keelwork trusts nothing beyond skops'
defaults; the user adds types with ``options.trusted`` after reviewing them.

Three input modes (``options.input``, chosen automatically by default):

- ``numeric``: one float matrix per batch (a DataFrame with the fitted column names when the
  model was fitted on one, so scikit-learn sees the names it expects);
- ``mixed``: a DataFrame whose column types pandas infers, for pipelines with encoders or a
  ColumnTransformer that take strings;
- ``text``: each instance is one string (or a record with one text field), for pipelines whose
  first step is a text vectorizer.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import zipfile
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from keelwork.adapters.runtimes.base import (
    PICKLE_SUFFIXES,
    BaseRuntime,
    RuntimeConfig,
    as_batch,
    import_optional,
    numeric_matrix,
    oip_dtype,
    one_per_instance,
    refuse_or_warn_pickle,
    rows_from_instances,
    text_batch,
    to_jsonable,
)
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import InvalidInputError, ModelLoadError, UnsafeArtifactError
from keelwork.types import Instance, JSONValue

_PURPOSE = "The 'sklearn' runtime"
#: scikit-learn's vendored array-API shim for torch: a package whose import imports torch.
_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def import_skops_io(purpose: str = _PURPOSE) -> ModuleType:
    """``skops.io``, imported without importing torch.

    skops builds its trusted-type list at import with scikit-learn's ``all_estimators()``,
    which walks sklearn's subpackages with ``pkgutil.walk_packages``. The walk imports each
    package to look inside it, among them ``sklearn.externals.array_api_compat.torch``, which
    imports torch wherever torch is installed (the ``[torch]`` extra): about a second and
    180 MB more in every process that loads a scikit-learn model, for a package that holds no
    estimator (``all_estimators`` skips ``externals``). For that walk only, the package is an
    empty stand-in; the real one imports as usual afterwards (scikit-learn's array API
    dispatch on torch tensors).

    Raises:
        MissingExtraError: skops is not installed.
    """
    if "skops.io" in sys.modules or _TORCH_SHIM in sys.modules or "torch" in sys.modules:
        return import_optional("skops.io", "sklearn", purpose)  # nothing left to spare
    stand_in = ModuleType(_TORCH_SHIM)
    stand_in.__path__ = []  # a package with nothing inside: the walk stops there
    sys.modules[_TORCH_SHIM] = stand_in
    try:
        return import_optional("skops.io", "sklearn", purpose)
    finally:
        if sys.modules.get(_TORCH_SHIM) is stand_in:
            del sys.modules[_TORCH_SHIM]
_TEXT_VECTORIZERS = ("CountVectorizer", "TfidfVectorizer", "HashingVectorizer")
#: Estimators that take non-numeric columns: their presence makes the input mode 'mixed'.
_MIXED_MARKERS = ("ColumnTransformer", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder")


class SklearnConfig(RuntimeConfig):
    """Options of the ``sklearn`` runtime (``models[].options`` in keel.yaml)."""

    #: Fully qualified type names to trust beyond skops' defaults (review them first).
    trusted: tuple[str, ...] = ()
    #: Feature order for records when the model was fitted without column names.
    feature_names: tuple[str, ...] | None = None
    #: How instances are turned into model input; 'auto' looks at the estimator.
    input: Literal["auto", "numeric", "mixed", "text"] = "auto"
    #: For text models: the record field that holds the text.
    text_field: str | None = None


class SklearnRuntime(BaseRuntime):
    """A fitted scikit-learn estimator or pipeline.

    Args:
        artifact: A ``.skops`` file (or ``.pkl``/``.joblib``/``.pickle`` with
            ``allow_unsafe_pickle``).
        options: See :class:`SklearnConfig`.
        allow_unsafe_pickle: Allow pickle/joblib files (they execute code on load).
    """

    kind = "sklearn"
    config_model: ClassVar[type[RuntimeConfig]] = SklearnConfig
    config: SklearnConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model: Any = None
        self._mode: str = "numeric"
        self._feature_names: tuple[str, ...] | None = None
        self._n_features: int | None = None
        self._frame_columns = False
        self._has_proba = False

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        """Load the estimator and work out its input mode, features and classes.

        Raises:
            UnsafeArtifactError: the file is a pickle and ``allow_unsafe_pickle`` is off, or
                it holds types skops does not trust and ``options.trusted`` does not list.
            ModelLoadError: the file is unreadable, corrupt or holds no estimator.
            MissingExtraError: scikit-learn or skops is not installed.
        """
        import_optional("sklearn", "sklearn", _PURPOSE)
        path = self.path
        if path.suffix.lower() in PICKLE_SUFFIXES or _looks_like_pickle(path):
            refuse_or_warn_pickle(path, self.allow_unsafe_pickle, self.kind)
            model = self._load_pickle()
        else:
            model = self._load_skops()
        if not callable(getattr(model, "predict", None)):
            raise ModelLoadError(
                f"The 'sklearn' artifact {str(path)!r} holds a {type(model).__name__}, not a "
                "fitted estimator with a predict() method."
            )
        self._model = model
        self._configure(model)
        self._loaded = True

    def _load_skops(self) -> Any:
        sio = import_skops_io()
        path = self.path
        try:
            untrusted: list[str] = list(sio.get_untrusted_types(file=path))
        except Exception as exc:
            raise self.load_error(exc, "read the skops file") from exc
        refused = [t for t in untrusted if t not in self.config.trusted]
        if refused:
            raise UnsafeArtifactError(untrusted_message(path, refused, untrusted))
        try:
            return sio.load(path, trusted=untrusted)
        except Exception as exc:
            raise self.load_error(exc, "load the skops file") from exc

    def _load_pickle(self) -> Any:
        path = self.path
        try:
            if path.suffix.lower() == ".joblib":
                joblib = import_optional("joblib", "sklearn", _PURPOSE)
                return joblib.load(path)
            with path.open("rb") as fh:
                return pickle.load(fh)  # gated by allow_unsafe_pickle above
        except Exception as exc:
            raise self.load_error(exc, "unpickle") from exc

    def _configure(self, model: Any) -> None:
        cfg = self.config
        names = getattr(model, "feature_names_in_", None)
        self._frame_columns = names is not None
        if names is not None:
            self._feature_names = tuple(str(n) for n in names)
        elif cfg.feature_names is not None:
            self._feature_names = tuple(cfg.feature_names)
        n = getattr(model, "n_features_in_", None)
        self._n_features = int(n) if n is not None else (
            len(self._feature_names) if self._feature_names else None)
        if (self._feature_names is not None and self._n_features is not None
                and len(self._feature_names) != self._n_features):
            raise ModelLoadError(
                f"options.feature_names lists {len(self._feature_names)} names but the model "
                f"{self.path.name!r} takes {self._n_features} features."
            )
        self._mode = cfg.input if cfg.input != "auto" else _detect_mode(model)
        # getattr, not hasattr alone: Pipeline and SVC hide predict_proba behind a property
        self._has_proba = callable(getattr(model, "predict_proba", None))
        if self._frame_columns and self._mode == "numeric" and _strip_feature_names(model):
            # names are checked here, when records are put in order; the estimator then gets
            # a plain array, 3-5x faster than building and validating a DataFrame per batch
            self._frame_columns = False
        if self._frame_columns or self._mode == "mixed":
            import_optional("pandas", "sklearn", "A scikit-learn model fitted on a DataFrame")
        self._signature = self._build_signature(model)

    def _build_signature(self, model: Any) -> Signature:
        classes = getattr(model, "classes_", None)
        n = self._n_features if self._n_features is not None else -1
        if self._mode == "text":
            inputs = (TensorSignature(self.config.text_field or "text", "BYTES", (-1,)),)
        elif self._mode == "mixed":
            inputs = (TensorSignature("input", "BYTES", (-1, n)),)
        else:
            inputs = (TensorSignature("input", "FP64", (-1, n)),)
        out_dtype = oip_dtype(classes.dtype) if classes is not None else "FP64"
        outputs = [TensorSignature("predict", out_dtype, (-1,))]
        if self._has_proba:
            n_classes = len(classes) if classes is not None else -1
            outputs.append(TensorSignature("predict_proba", "FP64", (-1, n_classes)))
        return Signature(
            inputs=inputs,
            outputs=tuple(outputs),
            feature_names=self._feature_names if self._mode != "text" else None,
            classes=tuple(to_jsonable(classes)) if classes is not None else None,
            extra={"estimator": type(model).__name__, "input": self._mode},
        )

    def unload(self) -> None:
        """Drop the estimator."""
        self._model = None
        self._loaded = False

    # ------------------------------------------------------------------ predict
    def predict(self, instances: Sequence[Instance]) -> list[JSONValue]:
        """Predict one label (or value) per instance.

        Raises:
            InvalidInputError: the batch cannot be turned into model input.
            PredictionError: the estimator raised.
        """
        model = self._require()
        if not as_batch(instances):
            return []
        x, n = self._to_input(instances)
        with self.model_errors():
            out = model.predict(x)
        return one_per_instance(out, n, kind=self.kind, what="predictions")

    def predict_proba(self, instances: Sequence[Instance]) -> list[list[float]] | None:
        """Class probabilities per instance (columns in ``signature.classes`` order), or None.

        Raises:
            InvalidInputError: the batch cannot be turned into model input.
            PredictionError: the estimator raised.
        """
        model = self._require()
        if not self._has_proba:
            return None
        if not as_batch(instances):
            return []
        x, n = self._to_input(instances)
        with self.model_errors("computing probabilities"):
            out = model.predict_proba(x)
        return one_per_instance(out, n, kind=self.kind, what="probability rows")

    # ------------------------------------------------------------------ explain hook
    def explain_input(self, instances: Sequence[Instance]) -> tuple[Any, Any, list[str], str]:
        """(estimator, model input of ``instances``, its column names, input mode): what
        the exact explainers (keelwork.core.explain.exact) need; an optional runtime hook."""
        model = self._require()
        x, _ = self._to_input(instances)
        n = self._n_features or 0
        names = list(self._feature_names or (f"x{i}" for i in range(n)))
        return model, x, names, self._mode

    def _require(self) -> Any:
        if self._model is None:
            raise self._not_loaded()
        return self._model

    def _to_input(self, instances: Sequence[Instance]) -> tuple[Any, int]:
        if self._mode == "text":
            texts = text_batch(instances, text_field=self.config.text_field)
            return texts, len(texts)
        if self._mode == "mixed":
            return self._mixed_frame(instances)
        x = numeric_matrix(instances, feature_names=self._feature_names,
                           n_features=self._n_features)
        if self._frame_columns:
            import pandas as pd

            x = pd.DataFrame(x, columns=list(self._feature_names or ()), copy=False)
        return x, x.shape[0]

    def _mixed_frame(self, instances: Sequence[Instance]) -> tuple[Any, int]:
        import pandas as pd

        rows = rows_from_instances(as_batch(instances), self._feature_names)
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)) or (
                    self._n_features is not None and len(row) != self._n_features):
                raise InvalidInputError(
                    f"Instance {i} must be a record or a list of {self._n_features} values in "
                    f"feature order; got {type(row).__name__}"
                    + (f" of length {len(row)}" if isinstance(row, (list, tuple)) else "") + "."
                )
        columns = list(self._feature_names) if self._feature_names else None
        return pd.DataFrame(rows, columns=columns), len(rows)


def untrusted_message(path: Any, refused: Sequence[str], needed: Sequence[str]) -> str:
    """What to do about a skops file with types nobody trusted yet.

    The remedy comes first: ``options.trusted`` with the exact list the file needs (the types
    already trusted included, so the line can be pasted as it is). ``allow_unsafe_pickle`` is
    named only after it, and only to say it is not the way: it applies to pickle files.
    """
    missing = ", ".join(repr(t) for t in refused)
    exact = ", ".join(repr(t) for t in needed)
    return (
        f"The skops file {str(path)!r} holds types that skops does not trust by default and "
        f"options.trusted does not list: {missing}. Loading a type can run its code: review "
        f"them, then trust exactly the types this file needs with options.trusted on the model "
        f"in keel.yaml: options: {{trusted: [{exact}]}}. (allow_unsafe_pickle does not apply: "
        "it only lets pickle/joblib files load, and those can run any code.)"
    )


def _detect_mode(model: Any) -> str:
    first = model.steps[0][1] if hasattr(model, "steps") and model.steps else model
    if type(first).__name__ in _TEXT_VECTORIZERS or any(
            base.__name__ in _TEXT_VECTORIZERS for base in type(first).__mro__):
        return "text"
    parts = [model]
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        # a third-party estimator may have a broken get_params: then look at the top only
        with contextlib.suppress(Exception):
            parts.extend(get_params(deep=True).values())
    for part in parts:
        if any(base.__name__ in _MIXED_MARKERS for base in type(part).__mro__):
            return "mixed"
    return "numeric"


def _strip_feature_names(model: Any) -> bool:
    """Remove ``feature_names_in_`` from every fitted estimator inside ``model``.

    Only for numeric models, whose computation never reads the names: scikit-learn keeps them
    to check that a DataFrame has the fitted columns, and warns when it gets an array instead.
    Returns False (and restores everything) when some estimator keeps its names anyway.
    """
    stripped: list[tuple[Any, Any]] = []
    seen: set[int] = set()

    def walk(obj: Any, depth: int) -> None:
        if depth > 8 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item, depth + 1)
            return
        if isinstance(obj, dict):
            for item in obj.values():
                walk(item, depth + 1)
            return
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict) or not callable(getattr(obj, "get_params", None)):
            return
        if "feature_names_in_" in attrs:
            stripped.append((obj, attrs.pop("feature_names_in_")))
        for value in list(attrs.values()):
            walk(value, depth + 1)

    walk(model, 0)
    if getattr(model, "feature_names_in_", None) is None:
        return True
    for obj, names in stripped:
        obj.__dict__["feature_names_in_"] = names
    return False


def _looks_like_pickle(path: Any) -> bool:
    """True for a file that is not a zip archive and starts like a pickle stream."""
    try:
        if zipfile.is_zipfile(path):
            return False
        with path.open("rb") as fh:
            head: bytes = fh.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


__all__ = ["SklearnConfig", "SklearnRuntime", "import_skops_io", "untrusted_message"]
