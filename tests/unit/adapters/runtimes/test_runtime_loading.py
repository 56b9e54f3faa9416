"""load_runtime / runtime_class: kind resolution, plug-ins, missing artifacts, option checks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import keelwork.adapters.runtimes as runtimes
from keelwork.adapters.runtimes import available_kinds, load_runtime, runtime_class
from keelwork.adapters.runtimes.base import BaseRuntime
from keelwork.core.signature import Signature, TensorSignature
from keelwork.errors import ArtifactError, ModelLoadError
from keelwork.spec.kinds import BUILTIN_RUNTIMES, RUNTIME_ENTRY_POINT_GROUP
from keelwork.types import ModelRuntime


class EchoRuntime(BaseRuntime):
    """A plug-in runtime: returns the instances; records every load."""

    kind = "echo"
    loads: list[str] = []

    def load(self) -> None:
        EchoRuntime.loads.append(str(self.artifact))
        self._signature = Signature(inputs=(TensorSignature("x", "BYTES"),),
                                    outputs=(TensorSignature("y", "BYTES"),))
        super().load()

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        return list(instances)


class _EntryPoint:
    """What importlib.metadata.entry_points yields, minus the distribution."""

    def __init__(self, name: str, value: str, target: Any = None, error: Exception | None = None):
        self.name, self.value, self.group = name, value, RUNTIME_ENTRY_POINT_GROUP
        self._target, self._error = target, error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._target


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> list[_EntryPoint]:
    """Entry points of the keelwork.runtimes group, as the test sets them."""
    eps: list[_EntryPoint] = []

    def fake_entry_points(*, group: str) -> list[_EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(runtimes, "entry_points", fake_entry_points)
    return eps


def test_builtin_kinds_resolve_to_their_classes() -> None:
    for kind, target in BUILTIN_RUNTIMES.items():
        cls = runtime_class(kind)
        assert f"{cls.__module__}:{cls.__name__}" == target
        assert cls.kind == kind


def test_unknown_kind_lists_the_valid_kinds(plugins: list[_EntryPoint]) -> None:
    plugins.append(_EntryPoint("echo", "tests:EchoRuntime", EchoRuntime))
    with pytest.raises(ModelLoadError) as info:
        runtime_class("xgboost")
    message = str(info.value)
    assert "'xgboost'" in message
    for kind in (*BUILTIN_RUNTIMES, "echo"):
        assert kind in message
    assert RUNTIME_ENTRY_POINT_GROUP in message


def test_plugin_kind_resolves_through_the_entry_point(plugins: list[_EntryPoint],
                                                       tmp_path: Path) -> None:
    plugins.append(_EntryPoint("echo", "my_pkg.runtime:EchoRuntime", EchoRuntime))
    assert available_kinds()[-1] == "echo"
    assert runtime_class("echo") is EchoRuntime
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"x")
    rt = load_runtime("echo", artifact, {})
    assert isinstance(rt, EchoRuntime) and isinstance(rt, ModelRuntime)
    assert EchoRuntime.loads[-1] == str(artifact)  # load() was called
    assert rt.predict([{"a": 1}]) == [{"a": 1}]


def test_builtin_kinds_win_over_plugins_of_the_same_name(plugins: list[_EntryPoint]) -> None:
    plugins.append(_EntryPoint("sklearn", "evil:Runtime", EchoRuntime))
    assert runtime_class("sklearn") is not EchoRuntime
    assert available_kinds().count("sklearn") == 1


def test_a_broken_plugin_is_a_model_load_error(plugins: list[_EntryPoint]) -> None:
    plugins.append(_EntryPoint("broken", "gone.module:Runtime",
                               error=ModuleNotFoundError("No module named 'gone'")))
    with pytest.raises(ModelLoadError, match=r"plug-in 'broken' \(gone.module:Runtime\).*gone"):
        runtime_class("broken")


def test_a_plugin_that_is_not_callable_is_refused(plugins: list[_EntryPoint]) -> None:
    plugins.append(_EntryPoint("weird", "pkg:CONSTANT", 42))
    with pytest.raises(ModelLoadError, match=r"not a class or factory"):
        runtime_class("weird")


def test_a_plugin_that_builds_no_runtime_is_refused(plugins: list[_EntryPoint],
                                                    tmp_path: Path) -> None:
    plugins.append(_EntryPoint("dicty", "pkg:make", lambda *a, **k: {"not": "a runtime"}))
    with pytest.raises(ModelLoadError, match=r"does not implement the ModelRuntime protocol"):
        load_runtime("dicty", tmp_path)


def test_the_real_entry_point_group_is_read() -> None:
    """Without the fake: whatever is installed is listed after the built-ins."""
    kinds = available_kinds()
    assert kinds[: len(BUILTIN_RUNTIMES)] == tuple(BUILTIN_RUNTIMES)


def test_missing_artifact_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.skops"
    with pytest.raises(ArtifactError) as info:
        load_runtime("sklearn", missing)
    message = str(info.value)
    assert str(missing) in message
    assert "models[].artifact" in message and "keel.yaml" in message


def test_the_python_kind_takes_a_reference_not_a_path() -> None:
    with pytest.raises(ModelLoadError, match=r"'module:function'; got 'not-a-reference'"):
        load_runtime("python", "not-a-reference")


@pytest.mark.parametrize("kind", list(BUILTIN_RUNTIMES))
def test_unknown_options_are_refused_by_name(kind: str, tmp_path: Path) -> None:
    cls = runtime_class(kind)
    with pytest.raises(ModelLoadError) as info:
        cls(tmp_path, {"batch_sise": 8})
    message = str(info.value)
    assert "'batch_sise'" in message and f"'{kind}' runtime" in message
    assert "valid options:" in message
    assert info.value.details[0].path == "options.batch_sise"


BAD_OPTION = {
    "sklearn": ("input", "images"),
    "onnx": ("intra_op_num_threads", 0),
    "torch": ("dtype", "complex64"),
    "hf": ("batch_size", 0),
    "mlflow": ("feature_names", 3),
    "python": ("classes", 5),
}


@pytest.mark.parametrize("kind", list(BUILTIN_RUNTIMES))
def test_option_values_are_checked(kind: str, tmp_path: Path) -> None:
    name, value = BAD_OPTION[kind]
    with pytest.raises(ModelLoadError) as info:
        runtime_class(kind)(tmp_path, {name: value})
    message = str(info.value)
    assert f"option {name!r}" in message and f"got {value!r}" in message


def test_configs_are_frozen(tmp_path: Path) -> None:
    rt = runtime_class("sklearn")(tmp_path / "m.skops", {"trusted": ["a.B"]})
    assert rt.config.trusted == ("a.B",)
    with pytest.raises(ValueError, match=r"frozen"):
        rt.config.trusted = ()


def test_importing_the_runtimes_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "import keelwork.adapters.runtimes as r\n"
        "from keelwork.spec.kinds import BUILTIN_RUNTIMES\n"
        "for kind in BUILTIN_RUNTIMES: r.runtime_class(kind)\n"
        "heavy = {'numpy', 'pandas', 'torch', 'sklearn', 'onnxruntime', 'transformers',"
        " 'mlflow', 'skops'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
