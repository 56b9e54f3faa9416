"""The build context as text (keelwork.core.container): base image, pins, the reduced keel.yaml
and the Dockerfile, linted by hadolint."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from build_tools import hadolint
from keelwork.core.container import (
    DOCKERIGNORE,
    UID,
    ImageSpec,
    base_image,
    dockerfile,
    extras_for,
    lock_platform,
    pins,
    python_version,
    reduce_spec,
    requirements_in,
)
from keelwork.errors import BuildError

RAW = {
    "kind": "keel.yaml", "version": 1,
    "service": {"name": "credit-scoring", "owners": ["ml@example.com"]},
    "models": [
        {"name": "credit", "runtime": "sklearn", "artifact": "model.skops",
         "options": {"input": "mixed", "trusted": ["numpy.dtype"]}, "tests": "tests/c.yaml",
         "fallback": "rules", "timeout_ms": 2000},
        {"name": "rules", "runtime": "python", "artifact": "rules:predict"},
    ],
    "monitoring": {"reference": "reference.jsonl", "windows": ["1h"]},
    "storage": {"url": "postgresql://u:p@db/keel", "durability": "sync",
                "spool_dir": "/var/spool/keel"},
    "flags": [{"name": "f", "model": "credit", "rules": []}],
    "server": {"port": 9000},
}


def image(**changes: object) -> ImageSpec:
    fields: dict[str, object] = {"base": "python:3.11.7-slim", "model": "credit", "version": 3,
                                 "sha256": "ab" * 32, "port": 9000, "has_data": True,
                                 "keelwork_version": "0.1.0"}
    fields.update(changes)
    return ImageSpec(**fields)  # type: ignore[arg-type]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# ------------------------------------------------------------------------- environment and pins
def test_the_base_image_is_the_recorded_python() -> None:
    assert base_image({"python": "3.11.7", "implementation": "CPython"}) == "python:3.11.7-slim"
    assert base_image({"python": "3.12.1"}) == "python:3.12.1-slim"
    assert base_image({}) == "python:3.11-slim"
    assert base_image({"python": "nonsense; rm -rf /"}) == "python:3.11-slim"
    assert python_version({"python": "3.12.1"}) == "3.12.1"
    assert python_version({}) == "3.11"
    with pytest.raises(BuildError, match="PyPy"):
        base_image({"python": "3.10.13", "implementation": "PyPy"})


def test_the_lock_platform_follows_the_recorded_architecture() -> None:
    assert lock_platform({"platform": "linux-x86_64"}) == "x86_64-manylinux_2_28"
    assert lock_platform({"platform": "linux-aarch64"}) == "aarch64-manylinux_2_28"
    assert lock_platform({"platform": "darwin-arm64"}) == "aarch64-manylinux_2_28"
    assert lock_platform({}) == "x86_64-manylinux_2_28"


def test_extras_follow_the_runtime_and_the_served_sections() -> None:
    assert extras_for("sklearn", {}) == ["sklearn"]
    assert extras_for("python", {}) == []
    assert extras_for("hf", {"server": {"tracing": True},
                             "monitoring": {"text_columns": ["text"]}}) == ["hf", "otel", "text"]


def test_recorded_versions_win_over_installed_ones_and_unused_ones_are_named() -> None:
    got = pins({"NumPy": "2.4.6", "scikit_learn": "1.9.1", "fastapi": "0.120.0",
                "keelwork": "0.1.0"},
               {"numpy": "2.1.0", "scikit-learn": "1.9.1", "torch": "2.13.0+cpu",
                "keelwork": "0.0.9"})
    assert got.versions == {"fastapi": "0.120.0", "numpy": "2.1.0", "scikit-learn": "1.9.1"}
    assert got.overridden == [("numpy", "2.4.6", "2.1.0")]
    assert got.unused == ["torch"]
    text = requirements_in(["sklearn"], "0.1.0", got.versions)
    assert text.splitlines()[1:] == ["keelwork[sklearn]==0.1.0", "fastapi==0.120.0",
                                     "numpy==2.1.0", "scikit-learn==1.9.1"]


# ------------------------------------------------------------------------------ reduced keel.yaml
def test_the_served_keel_yaml_keeps_one_model_pointing_into_the_context() -> None:
    reduced = reduce_spec(RAW, "credit", "sklearn", "model/model.skops",
                          {"input": "mixed", "trusted": ["numpy.dtype", "x.Y"]},
                          "data/reference.jsonl")
    spec = reduced.spec
    assert spec["models"] == [{"name": "credit", "runtime": "sklearn",
                               "artifact": "model/model.skops",
                               "options": {"input": "mixed", "trusted": ["numpy.dtype", "x.Y"]},
                               "timeout_ms": 2000}]
    assert spec["monitoring"] == {"reference": "data/reference.jsonl", "windows": ["1h"]}
    assert spec["storage"] == {"durability": "sync"}
    assert "flags" not in spec
    assert spec["server"] == {"port": 9000}
    assert RAW["models"][0]["artifact"] == "model.skops"  # the input is not changed
    notes = "\n".join(reduced.notes)
    for left_out in ("models rules", "models[credit].fallback", "models[credit].tests",
                     "flags", "storage.url", "storage.spool_dir"):
        assert left_out in notes
    assert "postgresql" not in json.dumps(spec)  # no credential of this machine goes along


def test_a_model_keel_yaml_does_not_declare_gets_a_section() -> None:
    reduced = reduce_spec({**RAW, "monitoring": {"windows": ["1h"]}}, "other", "onnx",
                          "model/m.onnx", {}, None)
    assert reduced.spec["models"] == [{"name": "other", "runtime": "onnx",
                                       "artifact": "model/m.onnx"}]
    assert reduced.spec["monitoring"] == {"windows": ["1h"]}


def test_online_features_are_refused_by_name() -> None:
    with pytest.raises(BuildError, match="online features"):
        reduce_spec({**RAW, "features": {"entities": [{"name": "customer"}]}}, "credit",
                    "sklearn", "model/m", {}, None)
    # an empty section is no feature
    reduce_spec({**RAW, "features": {}}, "credit", "sklearn", "model/m", {}, None)


# ------------------------------------------------------------------------------------ Dockerfile
def test_the_dockerfile_runs_keel_serve_as_a_non_root_user() -> None:
    steps = instructions(dockerfile(image()))
    assert steps[0] == ("FROM", "python:3.11.7-slim")
    users = [arg for word, arg in steps if word == "USER"]
    assert users == [f"{UID}:{UID}"] and UID != 0
    # nothing runs as root after the switch, and the server is the last thing set
    after = [word for word, _ in steps[[w for w, _ in steps].index("USER"):]]
    assert "RUN" not in after and "COPY" not in after
    assert ("ENTRYPOINT", '["keel", "serve"]') in steps
    cmd = json.loads(next(arg for word, arg in steps if word == "CMD"))
    assert cmd == ["/app/keel.yaml", "--host", "0.0.0.0", "--port", "9000"]


def test_the_healthcheck_asks_the_readiness_endpoint() -> None:
    steps = instructions(dockerfile(image()))
    health = next(arg for word, arg in steps if word == "HEALTHCHECK")
    exec_form = json.loads(health[health.index("CMD") + 3:].strip())
    assert exec_form[:2] == ["python", "-c"]
    assert "http://127.0.0.1:9000/v2/health/ready" in exec_form[2]
    compile(exec_form[2], "healthcheck", "exec")  # the probe is valid Python


def test_model_keel_yaml_and_data_are_read_only_and_owned_by_root() -> None:
    text = dockerfile(image())
    steps = instructions(text)
    copies = [arg for word, arg in steps if word == "COPY"]
    assert "keel.yaml /app/keel.yaml" in copies and "model/ /app/model/" in copies
    assert "data/ /app/data/" in copies
    assert not any("--chown" in c for c in copies)  # COPY makes root the owner
    fix = next(arg for word, arg in steps if word == "RUN" and "chmod 0444" in arg)
    assert "chown -R root:root /app" in fix
    assert "find /app/keel.yaml /app/model /app/data -type f -exec chmod 0444" in fix
    assert "find /app/keel.yaml /app/model /app/data -type d -exec chmod 0555" in fix
    assert "chown keel:keel /app/.keel" in fix  # the one folder the server writes
    no_data = instructions(dockerfile(image(has_data=False)))
    assert "data/ /app/data/" not in [arg for word, arg in no_data if word == "COPY"]


def test_dependencies_come_from_the_lock_with_hashes_only() -> None:
    steps = instructions(dockerfile(image()))
    install = next(arg for word, arg in steps if word == "RUN" and "pip install" in arg)
    for flag in ("--require-hashes", "--no-deps", "-r /tmp/keel-build/requirements.lock",
                 "--find-links /tmp/keel-build/wheels"):
        assert flag in install


def test_labels_name_the_version_and_are_quoted() -> None:
    text = dockerfile(image(labels={"note": 'say "hi"'}))
    assert 'io.keelwork.model="credit"' in text and 'io.keelwork.version="3"' in text
    assert f'io.keelwork.artifact-sha256="{"ab" * 32}"' in text
    assert 'note="say \\"hi\\""' in text


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    lines = [x for x in DOCKERIGNORE.splitlines() if x and not x.startswith("#")]
    assert lines[0] == "**"
    assert sorted(lines[1:]) == sorted(["!Dockerfile", "!requirements.lock", "!wheels/",
                                        "!keel.yaml", "!model/", "!data/"])


@pytest.mark.parametrize("has_data", [True, False])
def test_hadolint_finds_nothing(has_data: bool) -> None:
    done = subprocess.run([hadolint(), "--no-color", "-"], input=dockerfile(image(
        has_data=has_data)), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_is_not_a_rubber_stamp() -> None:
    bad = "FROM python:latest\nUSER root\nRUN apt-get install curl\n"
    done = subprocess.run([hadolint(), "--no-color", "-"], input=bad, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # using latest
