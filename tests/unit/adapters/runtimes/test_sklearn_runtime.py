"""The scikit-learn runtime: skops trust, pickle gating, corrupt files, input modes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from fixtures import models as fm
from keelwork.adapters.runtimes import load_runtime
from keelwork.adapters.runtimes.base import UnsafePickleWarning
from keelwork.errors import InvalidInputError, ModelLoadError, UnsafeArtifactError

pytest.importorskip("sklearn")
sio = pytest.importorskip("skops.io")
np = pytest.importorskip("numpy")


def _load(built: fm.BuiltModel, **options: Any) -> Any:
    return load_runtime("sklearn", built.artifact, {**built.options, **options},
                        allow_unsafe_pickle=built.allow_unsafe_pickle)


# --------------------------------------------------------------------------- trust
def test_untrusted_skops_types_are_refused_by_name(tmp_path: Path) -> None:
    built = fm.sklearn_untrusted(tmp_path)
    untrusted = sio.get_untrusted_types(file=built.artifact)
    assert untrusted == ["fixtures.models.double"]
    with pytest.raises(UnsafeArtifactError) as info:
        _load(built)
    message = str(info.value)
    assert "'fixtures.models.double'" in message
    assert "options: {trusted: ['fixtures.models.double']}" in message
    # the remedy (options.trusted with the exact list) comes before the unsafe-pickle flag,
    # which is named only to say it does not apply
    assert "options.trusted" in message and "allow_unsafe_pickle does not apply" in message
    assert message.index("options.trusted") < message.index("allow_unsafe_pickle")
    assert message.index("trusted: ['fixtures.models.double']") < message.index(
        "allow_unsafe_pickle")


def test_the_trust_message_lists_every_type_the_file_needs(tmp_path: Path) -> None:
    """With some types trusted already, the message still gives the whole list (pasteable
    as it is) and names only the missing ones as missing."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = fm.iris_data()
    path = tmp_path / "hgb.skops"
    model = make_pipeline(FunctionTransformer(fm.double),
                          HistGradientBoostingClassifier(max_iter=5))
    sio.dump(model.fit(x, y), path)
    needed = sio.get_untrusted_types(file=path)
    assert len(needed) >= 2
    with pytest.raises(UnsafeArtifactError) as info:
        load_runtime("sklearn", path, {"trusted": needed[:1]})
    message = str(info.value)
    missing = message.split("options.trusted does not list: ", 1)[1].split(". Loading")[0]
    assert missing == ", ".join(repr(t) for t in needed[1:])
    assert f"options: {{trusted: [{', '.join(repr(t) for t in needed)}]}}" in message
    rt = load_runtime("sklearn", path, {"trusted": needed})
    assert rt.predict(x[:3].tolist()) == sio.load(path, trusted=needed).predict(x[:3]).tolist()


def test_trusted_types_load(tmp_path: Path) -> None:
    built = fm.sklearn_untrusted(tmp_path)
    rt = _load(built, trusted=["fixtures.models.double"])
    x, _ = fm.iris_data()
    direct = sio.load(built.artifact, trusted=["fixtures.models.double"])
    assert rt.predict(x[:5].tolist()) == direct.predict(x[:5]).tolist()


def test_trusting_an_unrelated_type_is_not_enough(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArtifactError, match=r"fixtures.models.double"):
        _load(fm.sklearn_untrusted(tmp_path), trusted=["builtins.eval"])


@pytest.mark.parametrize("fmt", ["pkl", "joblib", "pickle"])
def test_pickles_are_refused_without_the_opt_in(tmp_path: Path, fmt: str) -> None:
    built = fm.sklearn_iris(tmp_path, fmt)
    with pytest.raises(UnsafeArtifactError) as info:
        load_runtime("sklearn", built.artifact, built.options)
    message = str(info.value)
    assert f"iris.{fmt}" in message and "allow_unsafe_pickle: true" in message


@pytest.mark.parametrize("fmt", ["pkl", "joblib", "pickle"])
def test_allowed_pickles_load_with_a_loud_warning(tmp_path: Path, fmt: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    built = fm.sklearn_iris(tmp_path, fmt)
    with caplog.at_level(logging.WARNING, logger="keelwork.runtimes"), \
            pytest.warns(UnsafePickleWarning, match=f"iris.{fmt}"):
        rt = _load(built)
    assert any(f"iris.{fmt}" in r.getMessage() for r in caplog.records)
    assert rt.predict([built.sample[0]]) == [0]


def test_a_pickle_in_disguise_is_still_a_pickle(tmp_path: Path) -> None:
    built = fm.sklearn_iris(tmp_path, "pkl")
    disguised = tmp_path / "model.skops"
    disguised.write_bytes(Path(built.artifact).read_bytes())
    with pytest.raises(UnsafeArtifactError, match=r"model.skops"):
        load_runtime("sklearn", disguised)


def test_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    good = fm.sklearn_iris(tmp_path)
    broken = tmp_path / "broken.skops"
    broken.write_bytes(Path(good.artifact).read_bytes()[:200])
    with pytest.raises(ModelLoadError) as info:
        load_runtime("sklearn", broken)
    assert str(broken) in str(info.value) and not isinstance(info.value, UnsafeArtifactError)
    assert info.value.__cause__ is not None


def test_a_file_without_an_estimator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.skops"
    sio.dump({"coef": [1.0, 2.0]}, path)
    with pytest.raises(ModelLoadError, match=r"holds a dict, not a fitted estimator"):
        load_runtime("sklearn", path)


# --------------------------------------------------------------------------- tabular inputs
def test_feature_names_option_must_match_the_model(tmp_path: Path) -> None:
    built = fm.sklearn_iris(tmp_path)
    with pytest.raises(ModelLoadError, match=r"lists 2 names but the model 'iris.skops' takes 4"):
        _load(built, feature_names=["a", "b"])


def test_positional_model_takes_lists_and_refuses_records(tmp_path: Path) -> None:
    built = fm.sklearn_iris(tmp_path)
    rt = load_runtime("sklearn", built.artifact)
    x, _ = fm.iris_data()
    assert rt.signature.feature_names is None
    assert rt.predict(x[:3].tolist()) == sio.load(built.artifact).predict(x[:3]).tolist()
    with pytest.raises(InvalidInputError, match=r"options.feature_names"):
        rt.predict([built.sample[0]])


def test_frame_fitted_models_get_names_from_the_model_and_warn_nothing(tmp_path: Path) -> None:
    """Fitted on a DataFrame: names come from feature_names_in_; no sklearn warning fires
    (pytest turns warnings into errors here) and the outputs equal the DataFrame path."""
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    x, y = fm.iris_data()
    frame = pd.DataFrame(x, columns=list(fm.IRIS_FEATURES))
    model = VotingClassifier([("lr", LogisticRegression(max_iter=1000)),
                              ("tree", DecisionTreeClassifier(random_state=0))],
                             voting="soft").fit(frame, y)
    path = tmp_path / "vote.skops"
    sio.dump(model, path)
    # skops does not trust the tree's internal types by default: the user reviews and lists them
    rt = load_runtime("sklearn", path, {"trusted": sio.get_untrusted_types(file=path)})
    assert rt.signature.feature_names == fm.IRIS_FEATURES
    records = frame.iloc[::10].to_dict(orient="records")
    assert rt.predict(records) == model.predict(frame.iloc[::10]).tolist()
    assert np.allclose(rt.predict_proba(records), model.predict_proba(frame.iloc[::10]))


def test_mixed_pipelines_take_strings(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame({"colour": ["red", "blue", "red", "green"] * 5,
                          "size": [1.0, 2.0, 3.0, 4.0] * 5})
    y = [0, 1, 0, 1] * 5
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                                (StandardScaler(), ["size"])),
        LogisticRegression()).fit(frame, y)
    path = tmp_path / "mixed.skops"
    sio.dump(model, path)
    rt = load_runtime("sklearn", path)
    assert rt.signature.extra["input"] == "mixed"
    rows = [{"size": 2.0, "colour": "blue"}, ["red", 1.0]]
    expected = model.predict(pd.DataFrame([["blue", 2.0], ["red", 1.0]],
                                          columns=["colour", "size"])).tolist()
    assert rt.predict(rows) == expected
    with pytest.raises(InvalidInputError, match=r"Instance 0 must be a record or a list of 2"):
        rt.predict([["red"]])


def test_regressors_have_no_probabilities(tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    x, y = fm.iris_data()
    path = tmp_path / "ridge.skops"
    sio.dump(Ridge().fit(x, y), path)
    rt = load_runtime("sklearn", path)
    out = rt.predict(x[:2].tolist())
    assert all(type(v) is float for v in out)
    assert rt.predict_proba(x[:2].tolist()) is None
    assert rt.signature.classes is None
    assert [o.name for o in rt.signature.outputs] == ["predict"]


def test_model_errors_are_prediction_errors(tmp_path: Path) -> None:
    from keelwork.errors import PredictionError

    built = fm.sklearn_iris(tmp_path)
    rt = _load(built)
    with pytest.raises(PredictionError, match=r"ValueError") as info:
        rt.predict([[float("inf"), 1.0, 1.0, 1.0]])  # sklearn refuses infinity
    assert isinstance(info.value.__cause__, ValueError)


# --------------------------------------------------------------------------- text
def test_text_pipelines_are_detected(tmp_path: Path) -> None:
    built = fm.sklearn_text(tmp_path)
    rt = _load(built)
    assert rt.signature.extra["input"] == "text"
    assert rt.signature.feature_names is None
    assert rt.signature.classes == ("negative", "positive")
    assert rt.predict(["a wonderful story", "boring and awful"]) == ["positive", "negative"]


def test_text_field_picks_the_text_of_a_record(tmp_path: Path) -> None:
    rt = _load(fm.sklearn_text(tmp_path), text_field="body")
    assert rt.predict([{"title": "x", "body": "boring and awful"}]) == ["negative"]
    with pytest.raises(InvalidInputError, match=r"missing the text field 'body'"):
        rt.predict([{"title": "x"}])


_SKOPS_IMPORT = """
import importlib, json, sys
from pathlib import Path
from keelwork.adapters.runtimes.sklearn import import_skops_io
sio = import_skops_io() if sys.argv[1] == "spared" else importlib.import_module("skops.io")
out = {"torch": "torch" in sys.modules,
       "trusted": sio._trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES,
       "rss_mb": [int(line.split()[1]) / 1024 for line in Path("/proc/self/status")
                  .read_text().splitlines() if line.startswith("VmRSS:")][0]}
shim = importlib.import_module("sklearn.externals.array_api_compat.torch")
out["shim_is_real"] = hasattr(shim, "asarray") and "torch" in sys.modules
print(json.dumps(out))
"""


def test_skops_is_imported_without_torch_and_trusts_the_same_types() -> None:
    """skops' import walks every sklearn package, and one (the array-API shim for torch)
    imports torch: a process that loads a scikit-learn model would hold torch too wherever
    it is installed. The runtime imports skops without it (the same trusted types, ~180 MB
    less), and the shim imports for real afterwards."""
    import json
    import subprocess
    import sys

    pytest.importorskip("torch", reason="what is spared is torch's import: torch is absent")
    if sys.platform != "linux":
        pytest.skip("reads the resident memory from /proc")
    runs = {how: json.loads(subprocess.run([sys.executable, "-c", _SKOPS_IMPORT, how],
                                           capture_output=True, text=True, check=True,
                                           timeout=120).stdout)
            for how in ("spared", "plain")}
    if not runs["plain"]["torch"]:
        pytest.skip("this skops/scikit-learn no longer imports torch with skops.io")
    assert runs["spared"]["torch"] is False
    assert runs["spared"]["trusted"] == runs["plain"]["trusted"] != []
    assert runs["spared"]["rss_mb"] < runs["plain"]["rss_mb"] - 100, runs
    assert runs["spared"]["shim_is_real"] and runs["plain"]["shim_is_real"]
