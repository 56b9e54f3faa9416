"""``keel models``: every command through the real ``keel`` app, exit codes, messages, no traces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_USER", "ana")
    monkeypatch.setenv("COLUMNS", "200")  # wide Rich tables: whole words in the assertions
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def keel(*args: str) -> Result:
    result = runner.invoke(app, ["models", *args])
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def ok_json(*args: str) -> Any:
    result = keel(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def bad(*args: str) -> str:
    """Run a command that must fail with exit 2 and return its one-paragraph message."""
    result = keel(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") or "Usage:" in result.stderr, result.stderr
    return " ".join(result.stderr.split())


def skops_model(path: Path) -> Path:
    linear = pytest.importorskip("sklearn.linear_model")
    skops_io = pytest.importorskip("skops.io")
    skops_io.dump(linear.LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    return path


def blobs(project: Path) -> list[Path]:
    root = project / ".keel" / "artifacts" / "sha256"
    return sorted(root.glob("*/*")) if root.exists() else []


# --------------------------------------------------------------------------- happy paths
def test_register_list_show_versions(project: Path) -> None:
    model = skops_model(project / "model.skops")
    result = keel("register", "iris", "model.skops", "--runtime", "sklearn",
                  "--dataset-version", "iris-2024", "--metrics", '{"accuracy": 0.95}')
    assert result.exit_code == 0, result.output
    assert "registered iris:1 (sklearn, sha256 " in result.stdout
    again = keel("register", "iris", str(model), "-r", "sklearn", "-a", "champion")
    assert again.exit_code == 0, again.output
    assert "registered iris:2" in again.stdout
    assert "same content as version(s) 1: stored once" in again.stdout
    assert "alias champion -> 2" in again.stdout
    assert len(blobs(project)) == 1

    listed = ok_json("list")
    assert [(m["name"], m["latest_version"], m["version_count"], m["aliases"])
            for m in listed] == [("iris", 2, 2, {"champion": 2})]
    table = keel("list").stdout
    assert "iris" in table and "champion -> 2" in table

    shown = ok_json("show", "iris:1")
    assert shown["dataset_version"] == "iris-2024"
    assert shown["metrics"] == {"accuracy": 0.95}
    assert shown["created_by"] == "ana"
    assert Path(shown["artifact_path"]).read_bytes() == model.read_bytes()
    assert ok_json("show", "iris")["version"] == 2  # the champion
    text = keel("show", "iris@champion").stdout
    assert "iris:2" in text and "accuracy" not in text and "scikit-learn" in text

    versions = ok_json("versions", "iris")
    assert [v["version"] for v in versions] == [1, 2]
    assert "iris-2024" in keel("versions", "iris").stdout


def test_python_callable_registration(project: Path) -> None:
    result = keel("register", "rules", "json:dumps", "--runtime", "python")
    assert result.exit_code == 0, result.output
    assert "reference json:dumps" in result.stdout
    shown = ok_json("show", "rules")
    assert shown["artifact_uri"] == "python:json:dumps" and shown["artifact_path"] is None
    assert blobs(project) == []


def test_alias_unalias_and_history(project: Path) -> None:
    for i in range(2):
        (project / f"m{i}.bin").write_bytes(bytes([i]))
        assert keel("register", "churn", f"m{i}.bin", "-r", "onnx", "--no-verify").exit_code == 0
    first = keel("alias", "churn", "1", "champion", "--reason", "first release")
    assert first.exit_code == 0 and "churn@champion: - -> 1" in first.stdout
    moved = ok_json("alias", "churn", "2", "champion", "-m", "better AUC")
    assert (moved["from_version"], moved["to_version"], moved["actor"]) == (1, 2, "ana")
    same = keel("alias", "churn", "2", "champion")
    assert "already points at version 2; nothing changed" in same.stdout
    assert keel("alias", "churn", "1", "challenger").exit_code == 0
    removed = keel("unalias", "churn", "challenger", "-m", "canary failed")
    assert removed.exit_code == 0 and "removed churn@challenger (was 1)" in removed.stdout

    history = ok_json("history", "churn")
    assert [(h["alias"], h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        ("champion", None, 1, "first release"), ("champion", 1, 2, "better AUC"),
        ("challenger", None, 1, ""), ("challenger", 1, None, "canary failed")]
    table = keel("history", "churn").stdout
    assert "better AUC" in table and "canary failed" in table and "ana" in table


def test_empty_project_reads_without_creating_a_store(project: Path) -> None:
    assert ok_json("list") == []
    assert "No models registered" in keel("list").stdout
    assert "No model named 'iris' is registered" in bad("show", "iris")
    assert "No model named 'iris'" in bad("history", "iris")
    assert not (project / ".keel").exists()


def test_history_of_a_model_without_alias_changes(project: Path) -> None:
    (project / "m.bin").write_bytes(b"m")
    assert keel("register", "iris", "m.bin", "-r", "onnx", "--no-verify").exit_code == 0
    assert ok_json("history", "iris") == []
    assert "No alias of 'iris' has been set yet" in keel("history", "iris").stdout


# --------------------------------------------------------------------------- where the store is
SPEC = """\
service:
  name: demo
  owners: [ana@example.com]
models:
  - name: iris
    runtime: sklearn
storage:
  url: sqlite:///{db}
"""


def test_storage_url_from_keel_yaml_then_environment(project: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    spec_db = tmp_path / "from-spec.db"
    (project / "keel.yaml").write_text(SPEC.format(db=spec_db))
    (project / "m.bin").write_bytes(b"m")
    assert keel("register", "iris", "m.bin", "-r", "onnx", "--no-verify").exit_code == 0
    assert spec_db.is_file() and not (project / ".keel" / "keel.db").exists()

    env_db = tmp_path / "from-env.db"
    monkeypatch.setenv("KEELWORK_STORAGE_URL", f"sqlite:///{env_db}")
    assert ok_json("list") == []  # a different store
    assert keel("register", "other", "m.bin", "-r", "onnx", "--no-verify").exit_code == 0
    assert env_db.is_file()
    monkeypatch.delenv("KEELWORK_STORAGE_URL")
    assert [m["name"] for m in ok_json("list")] == ["iris"]


def test_project_option_and_default_store(tmp_path: Path, project: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (project / "m.bin").write_bytes(b"m")
    result = keel("register", "iris", "m.bin", "-r", "onnx", "--no-verify", "--project", str(other))
    assert result.exit_code == 0, result.output
    assert (other / ".keel" / "keel.db").is_file() and len(blobs(other)) == 1
    assert ok_json("list") == []
    assert [m["name"] for m in ok_json("list", "-p", str(other))] == ["iris"]


def test_cli_round_trip_on_each_backend(project: Path, store_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_STORAGE_URL", store_url)
    (project / "m.bin").write_bytes(b"m")
    assert keel("register", "iris", "m.bin", "-r", "onnx", "--no-verify").exit_code == 0
    assert keel("alias", "iris", "1", "champion").exit_code == 0
    assert ok_json("show", "iris@champion")["version"] == 1
    assert len(ok_json("history", "iris")) == 1


# --------------------------------------------------------------------------- bad input
def test_missing_artifact(project: Path) -> None:
    message = bad("register", "iris", "nope.skops", "--runtime", "sklearn")
    assert "The artifact 'nope.skops' for model 'iris' does not exist" in message
    assert "Check the path" in message


def test_unknown_runtime_kind(project: Path) -> None:
    (project / "m.skops").write_bytes(b"x")
    message = bad("register", "iris", "m.skops", "--runtime", "sklern")
    assert "'sklern' is not a known runtime kind; use one of sklearn, onnx" in message
    assert "Did you mean 'sklearn'?" in message


def test_runtime_is_required(project: Path) -> None:
    assert "--runtime" in bad("register", "iris", "m.skops")


def test_corrupt_model_file_registers_nothing(project: Path) -> None:
    (project / "model.skops").write_bytes(b"definitely not a zip file")
    message = bad("register", "iris", "model.skops", "-r", "sklearn")
    assert "Model 'iris' was not registered" in message and "model.skops" in message
    assert ok_json("list") == [] and blobs(project) == []


def test_wrong_runtime_for_the_file(project: Path) -> None:
    skops_model(project / "model.skops")
    message = bad("register", "iris", "model.skops", "-r", "onnx")
    assert "Model 'iris' was not registered" in message and "ONNX" in message
    assert blobs(project) == []


def test_unsafe_pickle_needs_the_opt_in(project: Path) -> None:
    import pickle

    linear = pytest.importorskip("sklearn.linear_model")
    model = linear.LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    (project / "model.pkl").write_bytes(pickle.dumps(model))
    message = bad("register", "iris", "model.pkl", "-r", "sklearn")
    assert "model.pkl" in message and "--allow-unsafe-pickle" in message
    assert ok_json("list") == [] and blobs(project) == []
    result = keel("register", "iris", "model.pkl", "-r", "sklearn", "--allow-unsafe-pickle")
    assert result.exit_code == 0, result.output
    assert "warning: Loading the pickle-based artifact 'model.pkl'" in result.stderr


@pytest.mark.parametrize(("runtime", "file"), [("sklearn", "model.pkl"),
                                              ("sklearn", "model.skops"),  # renamed pickle
                                              ("torch", "model.pt"), ("onnx", "model.joblib")])
def test_no_verify_does_not_skip_the_pickle_check(project: Path, runtime: str, file: str) -> None:
    """Issue 13 item 17: --no-verify skips loading the model, not the format's safety."""
    import pickle

    (project / file).write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    message = bad("register", "iris", file, "-r", runtime, "--no-verify")
    assert "Model 'iris' was not registered" in message and file in message
    assert "--allow-unsafe-pickle" in message
    assert ok_json("list") == [] and blobs(project) == []
    opted_in = keel("register", "iris", file, "-r", runtime, "--no-verify",
                    "--allow-unsafe-pickle")
    assert opted_in.exit_code == 0, opted_in.output


def test_no_verify_still_registers_safe_formats_unloaded(project: Path) -> None:
    (project / "m.onnx").write_bytes(b"\x08\x07not checked without --verify")
    assert keel("register", "iris", "m.onnx", "-r", "onnx", "--no-verify").exit_code == 0


@pytest.mark.parametrize(("args", "fragment"), [
    (("--metrics", "{accuracy: 1}"), "--metrics must be a JSON object (or @file.json)"),
    (("--metrics", "[1, 2]"), "--metrics must be a JSON object"),
    (("--metrics", '{"auc": "high"}'), "The metric 'auc' must be a finite number; got 'high'"),
    (("--metrics", "@missing.json"), "--metrics names the file 'missing.json', which cannot be "
                                     "read"),
    (("--options", "1"), "--options must be a JSON object"),
    (("--alias", "latest"), "The alias 'latest' is reserved"),
])
def test_bad_register_options(project: Path, args: tuple[str, ...], fragment: str) -> None:
    (project / "m.bin").write_bytes(b"m")
    assert fragment in bad("register", "iris", "m.bin", "-r", "onnx", "--no-verify", *args)
    assert ok_json("list") == []


def test_metrics_from_a_file(project: Path) -> None:
    (project / "m.bin").write_bytes(b"m")
    (project / "metrics.json").write_text('{"f1": 0.8}')
    assert keel("register", "iris", "m.bin", "-r", "onnx", "--no-verify",
                "--metrics", "@metrics.json").exit_code == 0
    assert ok_json("show", "iris")["metrics"] == {"f1": 0.8}


def test_lookup_errors(project: Path) -> None:
    (project / "m.bin").write_bytes(b"m")
    assert keel("register", "iris", "m.bin", "-r", "onnx", "--no-verify").exit_code == 0
    assert "has no version 7 (versions 1..1)" in bad("show", "iris:7")
    assert "has no alias 'canary' (aliases: none)" in bad("show", "iris@canary")
    assert "invalid version 'x'" in bad("show", "iris:x")
    assert "No model named 'irs' is registered (models: iris). Did you mean 'iris'?" in bad(
        "show", "irs")
    assert "has no version 3" in bad("alias", "iris", "3", "champion")
    assert "must not be a number" in bad("alias", "iris", "1", "42")
    assert "no alias 'champion' to remove" in bad("unalias", "iris", "champion")
    assert "No model named 'nope'" in bad("versions", "nope")


def test_missing_project_directory(tmp_path: Path) -> None:
    message = bad("list", "--project", str(tmp_path / "nowhere"))
    assert "The project directory" in message and "does not exist" in message


def test_invalid_keel_yaml_is_reported(project: Path) -> None:
    (project / "keel.yaml").write_text("service: {name: demo}\n")
    assert "owners" in bad("list")


def test_unreachable_store(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_STORAGE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert "Could not create the registry tables" in bad("list")
