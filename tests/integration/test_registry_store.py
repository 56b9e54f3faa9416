"""The SQL model registry on both backends (SQLite file, real PostgreSQL on loopback).

Each test takes ``store_url`` and therefore runs twice; the PostgreSQL half gets a fresh database.
Most registrations pass ``verify=False``: loading models is the runtimes' job, tested there; the
tests that exercise verification use real sklearn/skops and python-callable artifacts.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keelwork.adapters.runtimes import UnsafePickleWarning
from keelwork.adapters.stores import registry_store
from keelwork.adapters.stores.registry_store import SqlRegistry, git_state, open_registry
from keelwork.adapters.stores.schema import (
    REGISTRY_SCHEMA_KIND,
    model_versions,
    models,
    schema_meta,
)
from keelwork.core.registry import ModelRef
from keelwork.errors import (
    ArtifactError,
    ModelLoadError,
    ModelNotFoundError,
    RegistryError,
    StoreError,
    UnsafeArtifactError,
)
from keelwork.service.registration import register_model


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture
def registry(project: Path, store_url: str) -> Iterator[SqlRegistry]:
    # The store is handed who acts (the caller's `user` setting); it reads no environment.
    with open_registry(project, store_url, user="ana@example.com") as reg:
        yield reg


def _file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _blobs(reg: SqlRegistry) -> list[Path]:
    root = reg.artifacts.root / "sha256"
    return sorted(root.glob("*/*")) if root.exists() else []


def _count(reg: SqlRegistry, table: object) -> int:
    with reg.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- register
def test_register_records_artifact_and_provenance(registry: SqlRegistry, tmp_path: Path) -> None:
    src = _file(tmp_path, "model.skops", b"weights-v1")
    mv = register_model(registry, "iris", src, "sklearn", dataset_version="iris-2024-05",
                           metrics={"accuracy": 0.93}, options={"method": "predict"},
                           verify=False)
    assert (mv.name, mv.version, mv.runtime) == ("iris", 1, "sklearn")
    assert mv.size == len(b"weights-v1")
    assert mv.created_by == "ana@example.com"
    assert mv.dataset_version == "iris-2024-05"
    assert dict(mv.metrics) == {"accuracy": 0.93}
    assert dict(mv.options) == {"method": "predict"}
    assert mv.created_at.tzinfo is not None
    env = mv.environment
    assert env["python"] == platform.python_version()
    assert env["packages"]["numpy"] == importlib.metadata.version("numpy")
    assert env["packages"]["scikit-learn"] == importlib.metadata.version("scikit-learn")
    stored = registry.artifact_path(mv)
    assert stored is not None and stored.name == "model.skops"
    assert stored.read_bytes() == b"weights-v1"
    assert registry.artifacts.verify(mv.sha256 or "") == stored
    assert registry.get("iris", 1) == mv
    assert registry.list_versions("iris") == [mv]


def test_versions_increment_and_identical_bytes_share_one_blob(registry: SqlRegistry,
                                                               tmp_path: Path) -> None:
    a = _file(tmp_path / "a", "model.onnx", b"same-bytes")
    b = _file(tmp_path / "b", "other-name.onnx", b"same-bytes")
    c = _file(tmp_path / "c", "model.onnx", b"new-bytes")
    v1 = register_model(registry, "churn", a, "onnx", verify=False)
    v2 = register_model(registry, "churn", b, "onnx", verify=False)
    v3 = register_model(registry, "churn", c, "onnx", verify=False)
    assert [v1.version, v2.version, v3.version] == [1, 2, 3]
    assert v1.sha256 == v2.sha256 != v3.sha256
    assert v2.artifact_uri == v1.artifact_uri  # the second version points at the first blob
    assert len(_blobs(registry)) == 2
    other = register_model(registry, "fraud", a, "onnx", verify=False)
    assert other.version == 1 and other.sha256 == v1.sha256
    assert len(_blobs(registry)) == 2


def test_directory_artifacts_are_stored_as_directories(registry: SqlRegistry,
                                                       tmp_path: Path) -> None:
    src = tmp_path / "hf-model"
    _file(src, "config.json", b"{}")
    _file(src, "tokenizer/vocab.txt", b"a\nb\n")
    mv = register_model(registry, "sentiment", src, "hf", verify=False)
    stored = registry.artifact_path(mv)
    assert stored is not None and stored.is_dir() and stored.name == "hf-model"
    assert (stored / "tokenizer" / "vocab.txt").read_bytes() == b"a\nb\n"
    assert mv.size == 2 + 4


def test_python_callables_are_references_without_a_blob(registry: SqlRegistry) -> None:
    mv = register_model(registry, "rules", "my_pkg.rules:score", "python", verify=False)
    assert mv.is_reference and mv.sha256 is None and mv.size is None
    assert mv.artifact_uri == "python:my_pkg.rules:score"
    assert mv.callable_path == "my_pkg.rules:score"
    assert registry.artifact_path(mv) is None
    assert _blobs(registry) == []


def test_git_commit_and_dirty_state_are_recorded(registry: SqlRegistry, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    _file(repo, "train.py", b"print('train')\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "train")
    head = git("rev-parse", "HEAD")
    model = _file(repo, "model.skops", b"m")  # untracked: does not make the tree dirty
    clean = register_model(registry, "iris", model, "sklearn", source_dir=repo, verify=False)
    assert (clean.git_commit, clean.git_dirty) == (head, False)
    _file(repo, "train.py", b"print('changed')\n")
    dirty = register_model(registry, "iris", model, "sklearn", source_dir=repo, verify=False)
    assert (dirty.git_commit, dirty.git_dirty) == (head, True)
    outside = register_model(registry, "iris", model, "sklearn", source_dir=tmp_path / "project",
                                verify=False)
    assert git_state(tmp_path / "project") == (None, None)
    assert (outside.git_commit, outside.git_dirty) == (None, None)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("kwargs", "error", "fragment"), [
    ({"runtime": "sklern"}, RegistryError, "'sklern' is not a known runtime kind; use one of "
                                           "sklearn, onnx"),
    ({"name": "bad name"}, RegistryError, "The model name 'bad name' is invalid"),
    ({"metrics": {"auc": "high"}}, RegistryError, "'auc' must be a finite number"),
    ({"options": {"f": object()}}, RegistryError, "options must be plain JSON values"),
    ({"aliases": ["latest"]}, RegistryError, "'latest' is reserved"),
    ({"artifact": "missing.skops"}, ArtifactError, "'missing.skops' for model 'iris' does "
                                                   "not exist"),
    ({"artifact": "pkg.mod:fn"}, ArtifactError, "use --runtime python"),
    ({"artifact": "model.skops", "runtime": "python"}, ArtifactError,
     "takes a 'module:function' reference"),
])
def test_bad_input_is_refused_before_anything_is_written(
        registry: SqlRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kwargs: dict[str, object], error: type[Exception], fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    _file(tmp_path, "model.skops", b"x")
    call: dict[str, object] = {"name": "iris", "artifact": tmp_path / "model.skops",
                               "runtime": "sklearn", **kwargs}
    with pytest.raises(error) as info:
        register_model(registry, call.pop("name"), call.pop("artifact"), call.pop("runtime"),  # type: ignore[arg-type]
                          verify=False, **call)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert _count(registry, model_versions) == 0 and _count(registry, models) == 0
    assert _blobs(registry) == []


def test_a_failed_transaction_leaves_no_row_and_no_orphan_blob(
        registry: SqlRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _file(tmp_path, "shared.skops", b"shared")
    register_model(registry, "iris", shared, "sklearn", verify=False)

    def disk_full(*_args: object) -> None:
        raise StoreError("injected: the database ran out of space")

    # Fail after the version row was inserted, inside the same transaction.
    monkeypatch.setattr(SqlRegistry, "_write_aliases", disk_full)
    fresh = _file(tmp_path, "fresh.skops", b"fresh")
    with pytest.raises(StoreError, match="ran out of space"):
        register_model(registry, "iris", fresh, "sklearn", aliases=["champion"], verify=False)
    with pytest.raises(StoreError):
        register_model(registry, "brand-new", fresh, "sklearn", verify=False)
    with pytest.raises(StoreError):  # same bytes as version 1: its blob must survive
        register_model(registry, "iris", shared, "sklearn", verify=False)
    monkeypatch.undo()
    assert [v.version for v in registry.list_versions("iris")] == [1]
    assert [m.name for m in registry.list_models()] == ["iris"]
    assert len(_blobs(registry)) == 1
    assert registry.artifacts.verify(registry.get("iris", 1).sha256 or "")
    assert not any((registry.artifacts.root / "tmp").iterdir())
    assert register_model(registry, "iris", fresh, "sklearn", verify=False).version == 2


def test_verification_failures_register_nothing(registry: SqlRegistry, tmp_path: Path) -> None:
    corrupt = _file(tmp_path, "model.skops", b"this is not a zip archive")
    with pytest.raises(ModelLoadError) as info:
        register_model(registry, "iris", corrupt, "sklearn")
    assert "Model 'iris' was not registered" in str(info.value)
    assert "model.skops" in str(info.value)
    with pytest.raises(ModelLoadError, match="not_a_module_xyz"):
        register_model(registry, "rules", "not_a_module_xyz:score", "python")
    assert _count(registry, model_versions) == 0 and _blobs(registry) == []


def test_pickles_need_the_opt_in(registry: SqlRegistry, tmp_path: Path) -> None:
    pickle = pytest.importorskip("pickle")
    sk = pytest.importorskip("sklearn.linear_model")
    model = sk.LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(UnsafeArtifactError) as info:
        register_model(registry, "iris", path, "sklearn")
    assert "model.pkl" in str(info.value)
    assert _count(registry, model_versions) == 0 and _blobs(registry) == []
    with pytest.warns(UnsafePickleWarning, match="allow_unsafe_pickle is true"):
        mv = register_model(registry, "iris", path, "sklearn", allow_unsafe_pickle=True)
    assert mv.version == 1


def test_a_valid_skops_model_is_verified_and_registered(registry: SqlRegistry,
                                                        tmp_path: Path) -> None:
    sk = pytest.importorskip("sklearn.linear_model")
    skops_io = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    skops_io.dump(sk.LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    assert register_model(registry, "iris", path, "sklearn").version == 1


# --------------------------------------------------------------------------- aliases, resolve
def test_aliases_move_and_every_move_is_history(registry: SqlRegistry, tmp_path: Path) -> None:
    for i in range(3):
        register_model(registry, "iris", _file(tmp_path, f"m{i}.skops", bytes([i])), "sklearn",
                          verify=False)
    first = registry.set_alias("iris", 1, "champion", actor="ana", reason="first release")
    assert (first.from_version, first.to_version) == (None, 1)
    moved = registry.set_alias("iris", 3, "champion", actor="bo", reason="better AUC")
    assert (moved.from_version, moved.to_version, moved.actor) == (1, 3, "bo")
    same = registry.set_alias("iris", 3, "champion", actor="bo", reason="again")
    assert same.from_version == same.to_version == 3
    registry.set_alias("iris", 2, "challenger", reason="canary")
    removed = registry.remove_alias("iris", "challenger", actor="cy", reason="canary failed")
    assert (removed.from_version, removed.to_version) == (2, None)
    history = registry.alias_history("iris")
    assert [(h.alias, h.from_version, h.to_version, h.actor, h.reason) for h in history] == [
        ("champion", None, 1, "ana", "first release"),
        ("champion", 1, 3, "bo", "better AUC"),
        ("challenger", None, 2, "ana@example.com", "canary"),
        ("challenger", 2, None, "cy", "canary failed"),
    ]
    assert history[0].changed_at <= history[-1].changed_at
    assert registry.get("iris", 3).aliases == ("champion",)
    assert registry.get("iris", 2).aliases == ()


def test_alias_errors(registry: SqlRegistry, tmp_path: Path) -> None:
    register_model(registry, "iris", _file(tmp_path, "m.skops", b"m"), "sklearn", verify=False)
    with pytest.raises(ModelNotFoundError, match=r"Model 'iris' has no version 5 \(versions "
                                                 r"1..1\)"):
        registry.set_alias("iris", 5, "champion")
    with pytest.raises(ModelNotFoundError, match=r"No model named 'irs'.*Did you mean 'iris'"):
        registry.set_alias("irs", 1, "champion")
    with pytest.raises(RegistryError, match="must not be a number"):
        registry.set_alias("iris", 1, "2")
    with pytest.raises(ModelNotFoundError, match="no alias 'challenger' to remove"):
        registry.remove_alias("iris", "challenger")
    assert registry.alias_history("iris") == []


def test_resolve_by_version_alias_and_default(registry: SqlRegistry, tmp_path: Path) -> None:
    for i in range(3):
        register_model(registry, "iris", _file(tmp_path, f"m{i}.skops", bytes([i])), "sklearn",
                          verify=False)
    assert registry.resolve("iris").version == 3  # no champion: the latest
    registry.set_alias("iris", 2, "champion")
    registry.set_alias("iris", 1, "shadow")
    assert registry.resolve("iris").version == 2  # the champion
    assert registry.resolve("iris@latest").version == 3
    assert registry.resolve("iris@shadow").version == 1
    assert registry.resolve("iris:3").version == 3
    assert registry.resolve(ModelRef("iris", version=1)).version == 1
    with pytest.raises(ModelNotFoundError, match=r"no alias 'canary' \(aliases: champion -> 2, "
                                                 r"shadow -> 1\)"):
        registry.resolve("iris@canary")
    with pytest.raises(ModelNotFoundError, match="has no version 9"):
        registry.resolve("iris:9")
    with pytest.raises(ModelNotFoundError, match="No model named 'nope'"):
        registry.resolve("nope")
    with pytest.raises(RegistryError, match="invalid version"):
        registry.resolve("iris:x")


def test_list_models_summarises(registry: SqlRegistry, tmp_path: Path) -> None:
    assert registry.list_models() == []
    register_model(registry, "b-model", _file(tmp_path, "b.skops", b"b"), "sklearn", verify=False)
    register_model(registry, "a-model", _file(tmp_path, "a1.skops", b"a1"), "sklearn", verify=False)
    register_model(registry, "a-model", _file(tmp_path, "a2.skops", b"a2"), "sklearn",
                      aliases=["champion", "challenger"], verify=False)
    summaries = registry.list_models()
    assert [(s.name, s.latest_version, s.version_count) for s in summaries] == [
        ("a-model", 2, 2), ("b-model", 1, 1)]
    assert dict(summaries[0].aliases) == {"challenger": 2, "champion": 2}
    assert summaries[0].updated_at >= summaries[0].created_at


# --------------------------------------------------------------------------- concurrency
def test_concurrent_registers_never_share_a_version(project: Path, store_url: str,
                                                    tmp_path: Path) -> None:
    workers, each = 6, 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []
    got: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        # One registry (one engine, its own connections) per worker, as separate processes.
        try:
            with open_registry(project, store_url) as reg:
                barrier.wait(timeout=60)
                for j in range(each):
                    src = _file(tmp_path / f"w{i}", f"m{j}.skops", f"{i}-{j}".encode())
                    mv = register_model(reg, "iris", src, "sklearn", verify=False,
                                      aliases=["champion"])
                    with lock:
                        got.append(mv.version)
        except BaseException as exc:  # surfaced below
            barrier.abort()  # never leave the other workers waiting
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, workers * each + 1))
    with open_registry(project, store_url) as reg:
        history = reg.alias_history("iris")
        # Each move starts where the previous one ended: no lost update.
        assert [h.from_version for h in history[1:]] == [h.to_version for h in history[:-1]]
        assert len(history) == workers * each


def test_concurrent_alias_moves_keep_a_gapless_history(project: Path, store_url: str,
                                                        tmp_path: Path) -> None:
    with open_registry(project, store_url) as reg:
        for v in range(3):
            register_model(reg, "iris", _file(tmp_path, f"m{v}.skops", bytes([v])), "sklearn",
                         verify=False)
    workers, moves = 6, 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with open_registry(project, store_url) as reg:
                barrier.wait(timeout=60)
                for j in range(moves):
                    reg.set_alias("iris", 1 + (i + j) % 3, "champion", actor=f"w{i}")
        except BaseException as exc:  # surfaced below
            barrier.abort()
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_registry(project, store_url) as reg:
        history = reg.alias_history("iris")
        assert history[0].from_version is None
        assert [h.from_version for h in history[1:]] == [h.to_version for h in history[:-1]]
        assert all(h.from_version != h.to_version for h in history)
        assert reg.resolve("iris@champion").version == history[-1].to_version


# --------------------------------------------------------------------------- schema
def test_schema_is_idempotent_and_refuses_a_newer_one(project: Path, store_url: str) -> None:
    with open_registry(project, store_url) as reg, reg.engine.begin() as conn:
        assert conn.execute(select(schema_meta.c.version).where(
            schema_meta.c.kind == REGISTRY_SCHEMA_KIND)).scalar_one() == 1
        conn.execute(schema_meta.update().values(version=99))
    with pytest.raises(StoreError, match="schema version 99, newer than this keelwork"):
        open_registry(project, store_url)


def test_unreachable_store_is_a_store_error(project: Path) -> None:
    with pytest.raises(StoreError, match="Could not create the registry tables"):
        open_registry(project, "postgresql://nobody@127.0.0.1:1/none")


def test_default_store_is_sqlite_in_the_project(project: Path) -> None:
    with open_registry(project) as reg:
        assert reg.engine.dialect.name == "sqlite"
        assert reg.artifacts.root == project.absolute() / ".keel" / "artifacts"
    assert (project / ".keel" / "keel.db").is_file()
    assert registry_store.default_storage_url(project).endswith("/.keel/keel.db")
