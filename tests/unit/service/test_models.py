"""The one model loader: a registered version resolved and loaded as the server would."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import models as fm
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.errors import ModelLoadError, ModelNotFoundError
from keelwork.service.models import (
    load_registered,
    load_verifier,
    loaded,
    model_task,
    ref_string,
    resolve_target,
    spec_options,
    spec_target,
    target_resolver,
)
from keelwork.spec.loader import load_spec
from keelwork.spec.model import ResolvedSpec

KEEL_YAML = """\
service: {name: t, owners: [t@example.com]}
models:
  - name: lin
    runtime: python
    artifact: "callables:linear_score"
    options: {path: fixtures, feature_names: [a, b, c]}
"""


@pytest.fixture
def project(tmp_path: Path) -> ResolvedSpec:
    (tmp_path / "fixtures").symlink_to(fm.FIXTURES_DIR)
    (tmp_path / "keel.yaml").write_text(KEEL_YAML)
    resolved = load_spec(tmp_path / "keel.yaml")
    with open_registry(tmp_path, resolved.storage_url, audit=False) as registry:
        registry.register("lin", "callables:linear_score", "python",
                          options={"path": str(fm.FIXTURES_DIR)}, aliases=["stable"])
        registry.register("lin", "callables:echo", "python",
                          options={"path": str(fm.FIXTURES_DIR)})
    return resolved


def test_ref_string_reads_numbers_as_versions_and_words_as_aliases() -> None:
    assert ref_string("m", None) == "m"
    assert ref_string("m", "3") == "m:3"
    assert ref_string("m", "stable") == "m@stable"


def test_spec_options_make_a_relative_path_relative_to_keel_yaml(project: ResolvedSpec,
                                                                  ) -> None:
    assert spec_options(project, "lin")["path"] == str(project.project_dir / "fixtures")
    with pytest.raises(KeyError):
        spec_options(project, "nope")


def test_the_version_s_own_options_win_over_keel_yaml_s(project: ResolvedSpec) -> None:
    with open_registry(project.project_dir, project.storage_url, audit=False) as registry:
        target = resolve_target(registry, "lin@stable", project)
        bare = resolve_target(registry, "lin:1")
        by_name = target_resolver(project, registry)("lin", "1")
    assert (target.name, target.version, target.runtime) == ("lin", 1, "python")
    # keel.yaml's feature_names kept, its path replaced by the one registered with the version
    assert target.options == {"path": str(fm.FIXTURES_DIR), "feature_names": ["a", "b", "c"]}
    assert bare.options == {"path": str(fm.FIXTURES_DIR)}  # no keel.yaml: the version's only
    assert by_name == target


def test_load_registered_loads_the_champion_or_a_version(project: ResolvedSpec) -> None:
    runtime, version = load_registered(project, "lin")
    row = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert version == 2 and runtime.predict([row]) == [row]  # echo: the latest registered
    with loaded(project, "lin", "1") as (first, number):
        assert number == 1 and first.predict([[1.0, 0.0, 0.0]]) == [0.5]
    with pytest.raises(ModelNotFoundError):
        load_registered(project, "nope")


def test_the_verifier_loads_then_unloads_and_names_what_does_not_load(
        project: ResolvedSpec) -> None:
    with open_registry(project.project_dir, project.storage_url, audit=False) as registry:
        verify = load_verifier(project, registry)
        verify("lin", 1)
        with pytest.raises(ModelNotFoundError):
            verify("lin", 9)


def test_spec_target_is_keel_yaml_s_artifact(project: ResolvedSpec) -> None:
    target = spec_target(project, "lin")
    assert target is not None and target.artifact == "callables:linear_score"
    assert target.options["path"] == str(project.project_dir / "fixtures")


def test_model_task_says_nothing_for_a_callable(project: ResolvedSpec) -> None:
    assert model_task(project, "lin") is None


def test_a_library_error_while_verifying_is_a_model_load_error(
        project: ResolvedSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    import keelwork.service.models as models

    def broken(target: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(models, "load_target", broken)
    with (open_registry(project.project_dir, project.storage_url, audit=False) as registry,
          pytest.raises(ModelLoadError, match="Version 1 of 'lin' does not load")):
        load_verifier(project, registry)("lin", 1)
