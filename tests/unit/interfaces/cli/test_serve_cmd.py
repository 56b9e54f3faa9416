"""``keel serve --workers N`` (and ``server.workers``): what cannot run is refused before any
process starts, with the field named and exit code 2; the workers' app factory needs its
hand-off."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from keelwork.interfaces.cli.serve_app import HANDOFF_VARIABLE, handoff, worker_app

runner = CliRunner()
SPEC = """\
service: {name: s, owners: [a@example.com]}
models: [{name: m, runtime: python, artifact: 'x:y'}]
"""


def test_workers_on_an_in_memory_store_are_refused(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC + "storage: {url: 'sqlite://'}\n"
                                        "server: {workers: 2}\n")
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "server.workers" in text and "in-memory SQLite" in text


def test_more_workers_than_the_machine_holds_are_refused(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    too_many = 4 * (os.cpu_count() or 1) + 1
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--workers", str(too_many)])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert f"asks for {too_many} processes, more than this machine can hold" in text
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--workers", "0"])
    assert res.exit_code == 2 and "must be >= 1" in " ".join(res.output.split())


def test_the_worker_factory_builds_from_the_handoff_only(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HANDOFF_VARIABLE, raising=False)
    with pytest.raises(RuntimeError, match=HANDOFF_VARIABLE):
        worker_app()
    fixtures = Path(__file__).resolve().parents[3] / "fixtures"
    (tmp_path / "keel.yaml").write_text(
        "service: {name: handed, owners: [a@example.com]}\n"
        f"models: [{{name: adder, runtime: python, artifact: 'fakes:total', "
        f"options: {{path: '{fixtures}'}}}}]\n")
    monkeypatch.chdir(tmp_path.parent)  # the path is resolved: the worker's cwd does not matter
    monkeypatch.setenv(HANDOFF_VARIABLE, handoff(Path(tmp_path.name) / "keel.yaml", "warning",
                                                 False))
    built = worker_app()
    assert isinstance(built, FastAPI)
    assert any(getattr(r, "path", "") == "/v1/models/{name}:predict" for r in built.routes), \
        [getattr(r, "path", "") for r in built.routes]
    assert (tmp_path / ".keel").is_dir()  # the keel.yaml's own store was opened


def test_a_spec_one_server_cannot_serve_stops_before_the_workers_start(tmp_path: Path) -> None:
    # Without the start in the parent, uvicorn would restart each failing worker forever.
    (tmp_path / "keel.yaml").write_text(
        "service: {name: s, owners: [a@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'nosuchmodule:f'}]\n")
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--workers", "2"])
    assert res.exit_code == 2, res.output
    assert "nosuchmodule" in " ".join(res.output.split())


def test_engine_options_refused_where_they_do_not_apply(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    spec = str(tmp_path / "keel.yaml")
    for argv, said in (
            (["--engine", "kubernetes"],
             "--engine must be uvicorn, ray, mosec or granian; got 'kubernetes'"),
            (["--replicas", "2"], "--replicas and --address are for --engine ray"),
            (["--engine", "ray", "--workers", "2"], "--workers is for --engine uvicorn"),
            (["--engine", "mosec", "--workers", "2"],
             "--workers, --replicas and --address are not for --engine mosec"),
            (["--engine", "granian", "--replicas", "2"],
             "--workers, --replicas and --address are not for --engine granian"),
            (["--admin-port", "9000"], "--admin-port is for --engine mosec or granian"),
            (["--version-deployments"],
             "--version-deployments and --no-version-deployments are for --engine ray"),
            (["--no-version-deployments"],
             "--version-deployments and --no-version-deployments are for --engine ray"),
            (["--engine", "granian", "--version-deployments"],
             "--version-deployments and --no-version-deployments are for --engine ray")):
        res = runner.invoke(app, ["serve", spec, *argv])
        assert res.exit_code == 2, res.output
        assert said in " ".join(res.output.split()), res.output


def test_ray_engine_on_sqlite_is_refused_before_ray_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("keelwork.service.scale_out.require_ray", lambda: None)
    (tmp_path / "keel.yaml").write_text(SPEC + "storage: {url: 'sqlite:///keel.db'}\n")
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "ray",
                              "--replicas", "2"])
    assert res.exit_code == 2, res.output
    assert "storage.url is a sqlite store, which Ray Serve replicas cannot share" \
        in " ".join(res.output.split())


@pytest.mark.parametrize("guard", ["header_read_timeout_s: 3", "max_connections: 64"])
def test_ray_engine_refuses_connection_guards_it_cannot_enforce(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guard: str) -> None:
    """Ray Serve's HTTP proxy holds the connections: a guards.header_read_timeout_s or
    guards.max_connections that keel.yaml sets is refused before Ray starts, not accepted and
    ignored."""
    monkeypatch.setattr("keelwork.service.scale_out.require_ray", lambda: None)
    (tmp_path / "keel.yaml").write_text(SPEC + f"guards: {{{guard}}}\n")
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "ray"])
    assert res.exit_code == 2, res.output
    field = guard.split(":")[0]
    assert f"guards.{field} cannot be enforced on --engine ray" in " ".join(res.output.split())


def test_ray_engine_without_ray_gives_the_install_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray.serve", None)
    (tmp_path / "keel.yaml").write_text(SPEC)
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "ray"])
    assert res.exit_code == 2, res.output
    assert "pip install 'keelwork[ray]'" in " ".join(res.output.split())


@pytest.mark.parametrize("engine", ["mosec", "granian"])
def test_an_engine_without_its_package_gives_the_install_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setitem(sys.modules, engine, None)
    (tmp_path / "keel.yaml").write_text(SPEC)
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", engine])
    assert res.exit_code == 2, res.output
    assert f"pip install 'keelwork[{engine}]'" in " ".join(res.output.split())


def test_granian_engine_refuses_a_rate_limit_it_would_not_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("keelwork.service.granian_serving.require_granian", lambda: None)
    (tmp_path / "keel.yaml").write_text(SPEC + "guards: {rate_limit: {requests_per_second: 5}}\n")
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "granian"])
    assert res.exit_code == 2, res.output
    assert "guards.rate_limit" in " ".join(res.output.split())


def test_mosec_engine_refuses_api_keys_it_cannot_see_and_one_port_for_two(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("keelwork.service.mosec_serving.require_mosec", lambda: None)
    (tmp_path / "keel.yaml").write_text(SPEC + "guards: {require_api_key: true}\n")
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "mosec"])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "guards.require_api_key" in said and "does not read request headers" in said
    (tmp_path / "keel.yaml").write_text(SPEC)
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "mosec",
                              "--port", "9000", "--admin-port", "9000"])
    assert res.exit_code == 2, res.output
    assert "--admin-port must differ from the port" in " ".join(res.output.split())


def test_mosec_engine_says_what_its_port_does_not_see(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mosec's workers get no header: the command says, before anything starts, that the
    tenant, the subject, the sticky key and flags' header rules do not reach the gateway on its
    port. (This spec's model cannot load, so the command stops right after, exit 2.)"""
    monkeypatch.setattr("keelwork.service.mosec_serving.require_mosec", lambda: None)
    (tmp_path / "keel.yaml").write_text(SPEC)
    res = runner.invoke(app, ["serve", str(tmp_path / "keel.yaml"), "--engine", "mosec",
                              "--port", "9100"])
    said = " ".join(res.output.split())
    assert "never see a request's headers" in said and "x-subject-id" in said, said
    assert "port 9101 reads them all" in said
    assert said.index("never see") < said.index("was not registered")
    assert res.exit_code == 2


def test_the_ray_engine_serves_each_version_from_its_own_deployment_unless_told_not_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    said: list[bool] = []

    def record(*_: object, version_deployments: bool, **__: object) -> None:
        said.append(version_deployments)

    monkeypatch.setattr("keelwork.interfaces.cli.serve_cmd.serve_on_ray", record)
    spec = str(tmp_path / "keel.yaml")
    for argv in ([], ["--version-deployments"], ["--no-version-deployments"]):
        res = runner.invoke(app, ["serve", spec, "--engine", "ray", *argv])
        assert res.exit_code == 0, res.output
    assert said == [True, True, False]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_a_connection_bound_past_the_open_file_limit_is_refused_with_the_field_named(
        tmp_path: Path) -> None:
    """`keel serve` where the process may open 400 files: guards.max_connections: 1024 (set
    in keel.yaml) cannot be held, so the server does not start; the field and the limit are
    named, exit 2."""
    import resource
    import subprocess

    (tmp_path / "keel.yaml").write_text(SPEC + "guards: {max_connections: 1024}\n")

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (400, 400))

    done = subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main", "serve",
                           str(tmp_path / "keel.yaml")], capture_output=True, text=True,
                          timeout=120, preexec_fn=low_limit, cwd=tmp_path)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, text
    assert "guards.max_connections is 1024" in text and "at most 400" in text, text
