"""The checks before ``keel serve --engine ray`` starts Ray, and what its replicas start with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keelwork.errors import MissingExtraError, SpecError
from keelwork.service.scale_out import check_replicas, replica_env
from keelwork.service.serving import MAX_WORKERS_PER_CPU
from keelwork.spec import load_spec
from keelwork.spec.settings import METRICS_DIR_VARIABLE, WORKER_HANDOFF

PG = "postgresql://keel@db.example/keel"


def _project(tmp_path: Path, url: str) -> Path:
    (tmp_path / "keel.yaml").write_text(
        "service: {name: s, owners: [t@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'x:y'}]\n"
        f"storage: {{url: '{url}'}}\n")
    return tmp_path / "keel.yaml"


@pytest.fixture
def with_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks ask for Ray first: stand in for it where it is not installed."""
    monkeypatch.setattr("keelwork.service.scale_out.require_ray", lambda: None)


@pytest.mark.parametrize("url", ["sqlite:///keel.db", "sqlite://", "keel.db"])
def test_a_store_replicas_cannot_share_is_refused(tmp_path: Path, url: str,
                                                  with_ray: None) -> None:
    resolved = load_spec(_project(tmp_path, url))
    with pytest.raises(SpecError, match=r"storage\.url is a sqlite store") as caught:
        check_replicas(resolved, 1)
    assert [(d.path, d.rule, d.got) for d in caught.value.details] == \
        [("storage.url", "shared_store", "sqlite")]
    assert "keel serve --workers N" in str(caught.value)


def test_replica_counts(tmp_path: Path, with_ray: None) -> None:
    resolved = load_spec(_project(tmp_path, PG))
    assert check_replicas(resolved, 2, cpus=1) == 2
    with pytest.raises(SpecError, match="must be >= 1; got 0"):
        check_replicas(resolved, 0)
    most = MAX_WORKERS_PER_CPU * 2
    assert check_replicas(resolved, most, cpus=2) == most
    with pytest.raises(SpecError, match=f"at most {most}") as caught:
        check_replicas(resolved, most + 1, cpus=2)
    assert caught.value.details[0].path == "--replicas"
    # On a cluster its CPUs are counted once connected, not this machine's.
    assert check_replicas(resolved, most + 1, cpus=2, address="10.0.0.1:6379") == most + 1


def test_without_ray_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray.serve", None)  # importing it raises ImportError
    resolved = load_spec(_project(tmp_path, PG))
    with pytest.raises(MissingExtraError, match=r"pip install 'keelwork\[ray\]'"):
        check_replicas(resolved, 2)


def test_replica_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_USER", "ops")
    here = replica_env('{"spec": "x"}', metrics_dir=tmp_path, address=None)
    # A Ray started here hands its environment down already; the metrics folder is shared.
    assert here == {WORKER_HANDOFF: '{"spec": "x"}', METRICS_DIR_VARIABLE: str(tmp_path)}
    cluster = replica_env('{"spec": "x"}', metrics_dir=None, address="ray://head:10001")
    assert cluster == {WORKER_HANDOFF: '{"spec": "x"}', "KEELWORK_USER": "ops"}


def _replicas_project(tmp_path: Path, replicas: str) -> Path:
    path = _project(tmp_path, PG)
    path.write_text(path.read_text() + f"server: {{replicas: {replicas}}}\n")
    return path


def test_the_replicas_come_from_keel_yaml_unless_the_command_names_them(
        tmp_path: Path, with_ray: None) -> None:
    from keelwork.service.scale_out import replica_bounds

    resolved = load_spec(_replicas_project(tmp_path, "{min: 2, max: 5}"))
    assert replica_bounds(resolved, None) == (2, 5, "server.replicas.max")
    assert replica_bounds(resolved, 3) == (3, 3, "--replicas")
    # the most that may run is what the machine must hold, named where it was said
    with pytest.raises(SpecError, match=r"server\.replicas\.max 5 is more than") as caught:
        check_replicas(resolved, 5, cpus=1, field="server.replicas.max")
    assert caught.value.details[0].path == "server.replicas.max"
    fixed = load_spec(_replicas_project(tmp_path, "{min: 2}"))
    assert replica_bounds(fixed, None) == (2, 2, "server.replicas.min")
    assert replica_bounds(load_spec(_project(tmp_path, PG)), None) == (1, 1,
                                                                       "server.replicas.min")


@pytest.mark.parametrize(("replicas", "message"), [
    ("{min: 3, max: 2}", "max (2) must be >= min (3)"),
    ("{min: 2, target_ongoing_requests: 4}", "target_ongoing_requests steers the autoscaler"),
    ("{min: 2, max: 2, target_ongoing_requests: 4}", "only when max is above min"),
    ("{min: 0}", "greater than 0"),
])
def test_replica_bounds_that_make_no_sense_are_spec_errors(tmp_path: Path, replicas: str,
                                                           message: str) -> None:
    with pytest.raises(SpecError, match=r"server\.replicas") as caught:
        load_spec(_replicas_project(tmp_path, replicas))
    assert message in str(caught.value)
