"""``keel build``'s use-case (keelwork.service.build): the context written for a registered
version of a tiny iris project, its lock against the real index, and the refusals."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

import fixtures.models as fm
from build_tools import need_index, need_uv, pins_installable
from keelwork.adapters.packaging.lock import lock_pins
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.errors import BuildError, ModelNotFoundError, SpecError
from keelwork.service.build import ENTRIES, build_context, check_out, version_ref
from keelwork.service.models import load_target, spec_target
from keelwork.spec import load_spec
from keelwork.spec.settings import Settings

KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {name: iris-service, owners: [t@example.com]}
models:
  - name: iris
    runtime: sklearn
    options: {feature_names: [sepal_length, sepal_width, petal_length, petal_width]}
monitoring:
  reference: reference.jsonl
storage:
  durability: async
"""


def _project(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "keel.yaml").write_text(KEEL_YAML)
    built = fm.sklearn_iris(directory)
    (directory / "reference.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in built.sample))
    resolved = load_spec(directory / "keel.yaml")
    with open_registry(directory, resolved.storage_url, audit=False) as registry:
        registry.register("iris", built.artifact, "sklearn", aliases=["champion"])
        registry.register("lin", "callables:linear_score", "python",
                          options={"path": str(fm.FIXTURES_DIR)})
        # Recorded with version 2: an older idna than the installed one (the lock must pin
        # what was recorded, not what is installed now).
        mv = registry.register("iris", built.artifact, "sklearn")
        env = {**mv.environment, "packages": {**mv.environment["packages"], "idna": "3.7"}}
        from sqlalchemy import update

        from keelwork.adapters.stores.schema import model_versions

        with registry.engine.begin() as conn:
            conn.execute(update(model_versions).where(model_versions.c.version == 2)
                         .values(environment=env))
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A project and the context of iris@2 (needs uv and the package index)."""
    need_uv()
    need_index()
    project = _project(tmp_path_factory.mktemp("build") / "proj")
    return project, build_context(project, "iris@2", None, settings=Settings())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(tmp_path / "proj")


def _recorded(project: Path, version: int) -> Any:
    resolved = load_spec(project / "keel.yaml")
    with open_registry(project, resolved.storage_url, audit=False) as registry:
        return registry.get("iris", version)


def test_the_context_has_every_entry_and_the_recorded_artifact(built: tuple[Path, Any]) -> None:
    project, done = built
    mv = _recorded(project, 2)
    assert done.directory == project / "build" / "iris-2"
    assert sorted(p.name for p in done.directory.iterdir()) == sorted(ENTRIES)
    artifact = done.directory / done.artifact
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == mv.sha256
    assert (done.directory / "data" / "reference.jsonl").read_bytes() == (
        project / "reference.jsonl").read_bytes()
    wheels = list((done.directory / "wheels").iterdir())
    assert [w.name for w in wheels] == ["keelwork-0.1.0-py3-none-any.whl"]
    assert done.base == f"python:{mv.environment['python']}-slim"
    assert f"FROM {done.base}\n" in (done.directory / "Dockerfile").read_text()
    assert not [p for p in project.iterdir() if p.name.startswith(".keel-build-")]
    assert not [p for p in (project / "build").iterdir() if p.name.startswith(".keel-build-")]


def test_the_served_keel_yaml_loads_and_predicts_as_the_version(built: tuple[Path, Any]) -> None:
    project, done = built
    resolved = load_spec(done.directory / "keel.yaml")
    assert [m.name for m in resolved.spec.models] == ["iris"]
    assert resolved.spec.storage.durability == "async"  # what the project set is kept
    assert resolved.spec.monitoring.reference == "data/reference.jsonl"
    target = spec_target(resolved, "iris")
    assert target is not None and Path(target.artifact) == done.directory / done.artifact
    rows = [json.loads(line) for line in (project / "reference.jsonl").read_text().splitlines()]
    from keelwork.service.models import load_registered

    original, version = load_registered(load_spec(project / "keel.yaml"), "iris:2")
    assert version == 2
    packaged = load_target(target)
    assert packaged.predict(rows) == original.predict(rows)


def test_the_lock_pins_the_recorded_versions_with_hashes(built: tuple[Path, Any]) -> None:
    project, done = built
    recorded = _recorded(project, 2).environment["packages"]
    text = (done.directory / "requirements.lock").read_text()
    locked = lock_pins(text)
    assert locked["idna"] == "3.7"  # recorded, though another is installed here
    assert any("idna: 3.7 as recorded" in note for note in done.notes)
    for name in ("numpy", "scikit-learn", "skops", "pandas"):
        assert locked[name] == recorded[name], name
    assert "torch" not in locked  # recorded (installed beside) but not needed by sklearn
    assert locked["keelwork"] == "0.1.0"
    wheel = next((done.directory / "wheels").iterdir())
    assert f"--hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" in text
    # every pin carries at least one hash: pip's --require-hashes accepts the file
    blocks = [b for b in text.split("\n") if b and not b.startswith((" ", "#"))]
    assert len(blocks) == len(locked) == done.pins
    for block in text.split("\n")[2:]:
        if block and not block.startswith((" ", "#")):
            assert block.endswith("\\"), block  # a hash line follows


def test_every_pin_is_installable_for_the_image(built: tuple[Path, Any]) -> None:
    project, done = built
    mv = _recorded(project, 2)
    result = pins_installable(done.directory, mv.environment["python"], "x86_64")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Would install" in result.stdout


def test_force_replaces_only_what_keel_build_writes(built: tuple[Path, Any]) -> None:
    project, done = built
    mine = done.directory / "NOTES.txt"
    mine.write_text("kept")
    (done.directory / "model" / "stale.bin").write_text("old")
    with pytest.raises(BuildError, match=r"is not empty; .* --force"):
        build_context(project, "iris@2", done.directory, settings=Settings())
    again = build_context(project, "iris@2", done.directory, settings=Settings(), force=True)
    assert mine.read_text() == "kept"
    assert not (again.directory / "model" / "stale.bin").exists()
    assert sorted(p.name for p in again.directory.iterdir()) == sorted([*ENTRIES, "NOTES.txt"])
    # the same source and the same recorded environment give the same wheel and lock
    assert again.pins == done.pins


def test_unknown_models_and_versions_are_named(project: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="'nope'"):
        build_context(project, "nope@1", None, settings=Settings())
    with pytest.raises(ModelNotFoundError, match=r"iris.*9"):
        build_context(project, "iris@9", None, settings=Settings())
    assert not (project / "build").exists()


def test_a_project_without_a_registry_or_keel_yaml(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(KEEL_YAML)
    with pytest.raises(ModelNotFoundError, match="No model named 'iris' is registered"):
        build_context(tmp_path, "iris@1", None, settings=Settings())
    with pytest.raises(SpecError, match=r"No keel\.yaml"):
        build_context(tmp_path / "empty", "iris@1", None, settings=Settings())


def test_a_code_reference_cannot_be_packaged(project: Path) -> None:
    with pytest.raises(BuildError, match="lin:1 is the code reference 'python:callables"):
        build_context(project, "lin@1", None, settings=Settings())


def test_a_failed_lock_leaves_no_context(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keelwork.adapters.packaging.lock as lock

    def fail(*_: object, **__: object) -> None:
        raise BuildError("The lock does not resolve: (simulated)")

    monkeypatch.setattr(lock, "compile_lock", fail)
    out = project / "ctx"
    with pytest.raises(BuildError, match="simulated"):
        build_context(project, "iris@1", out, settings=Settings())
    assert not out.exists()
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".keel-build")) == []


def test_out_must_be_an_empty_folder_or_new(tmp_path: Path) -> None:
    check_out(tmp_path / "new", force=False)
    check_out(tmp_path, force=False)  # empty
    (tmp_path / "f").write_text("x")
    with pytest.raises(BuildError, match="is a file"):
        check_out(tmp_path / "f", force=True)
    with pytest.raises(BuildError, match="not empty"):
        check_out(tmp_path, force=False)
    check_out(tmp_path, force=True)


def test_version_refs() -> None:
    assert version_ref("iris@3") == "iris:3"
    assert version_ref("iris@champion") == "iris@champion"
    assert version_ref("iris:3") == "iris:3"


def test_files_are_written_readable(built: tuple[Path, Any]) -> None:
    _, done = built
    for path in done.directory.rglob("*"):
        if path.is_file():
            assert os.stat(path).st_mode & stat.S_IRUSR, path
