"""The container build context of one model version (``keel build NAME@V``), as text: pure.

What goes in the context and why, decided here without touching a file:

- :func:`base_image`: the base image named by the Python version recorded with the version
  (``python:3.11.7-slim``), so the image runs the interpreter the model was registered under;
- :func:`lock_platform`: the platform the lock is resolved for (the recorded machine's
  architecture, glibc wheels: the slim images are Debian);
- :func:`extras_for`: the keelwork extras the served keel.yaml needs (the runtime's, plus
  ``otel`` for ``server.tracing``, ``text`` for ``monitoring.text_columns``);
- :func:`pins`: exact versions for the lock: the installed closure of keelwork, with the
  versions recorded with the model winning where they differ;
- :func:`reduce_spec`: the project's keel.yaml cut down to the one model, its artifact and
  reference pointing into the context, nothing that names another model or a store of this
  machine;
- :func:`dockerfile`, :data:`DOCKERIGNORE`: the image: dependencies installed from the lock
  with ``--require-hashes``, a non-root user, model and keel.yaml read-only and owned by root,
  a health check on ``/v2/health/ready``, ``keel serve`` as the entrypoint.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keelwork.errors import BuildError

#: The base image when the recorded environment names no usable Python version.
DEFAULT_BASE = "python:3.11-slim"
#: keelwork extras each runtime kind needs in the image (python: code of the project, refused).
RUNTIME_EXTRAS = {"sklearn": "sklearn", "onnx": "onnx", "torch": "torch", "hf": "hf",
                  "mlflow": "mlflow"}
#: Where things live in the image.
APP_DIR = "/app"
#: The unprivileged account the server runs as (no login shell, no home of its own).
USER, UID = "keel", 10001
#: keel.yaml sections dropped from the served copy, with the reason printed by ``keel build``.
DROPPED_SECTIONS = {
    "flags": "flags route between versions and models of the project's registry; the image "
             "serves one version",
}
#: Fields of ``storage`` that name a store of this machine; the image keeps its own store.
DROPPED_STORAGE = ("url", "spool_dir", "subject_keys_url")

_PY_VERSION = re.compile(r"^3\.(\d+)(\.\d+)?$")
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def base_image(environment: Mapping[str, Any]) -> str:
    """``python:X.Y.Z-slim`` for the recorded CPython version, else :data:`DEFAULT_BASE`.

    Raises:
        BuildError: the version was registered under another implementation (PyPy...).
    """
    implementation = environment.get("implementation")
    if implementation not in (None, "CPython"):
        raise BuildError(f"The version was registered under {implementation}; keel build "
                         "writes images of CPython only (pass --base IMAGE to choose one).")
    python = str(environment.get("python", ""))
    return f"python:{python}-slim" if _PY_VERSION.match(python) else DEFAULT_BASE


def python_version(environment: Mapping[str, Any]) -> str:
    """The recorded Python version (``3.11.7``), else the default base image's (``3.11``)."""
    python = str(environment.get("python", ""))
    return python if _PY_VERSION.match(python) else "3.11"


def lock_platform(environment: Mapping[str, Any]) -> str:
    """uv's ``--python-platform`` for the recorded machine: ``x86_64-manylinux_2_28`` or the
    aarch64 one (a recorded macOS or Windows laptop still serves from a Linux image of its
    architecture; an unknown one gets x86_64)."""
    platform = str(environment.get("platform", ""))
    arch = _ARCHES.get(platform.rsplit("-", 1)[-1], "x86_64")
    return f"{arch}-manylinux_2_28"


def extras_for(runtime: str, spec: Mapping[str, Any]) -> list[str]:
    """The keelwork extras the served keel.yaml needs, sorted."""
    extras = {RUNTIME_EXTRAS[runtime]} if runtime in RUNTIME_EXTRAS else set()
    if _mapping(spec.get("server")).get("tracing"):
        extras.add("otel")
    if _mapping(spec.get("monitoring")).get("text_columns"):
        extras.add("text")
    return sorted(extras)


def canonical(name: str) -> str:
    """A distribution name as the index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pins:
    """Exact versions for the lock, by canonical name; where the recorded and installed versions
    of a package differ, ``(name, installed, recorded)`` (the recorded one is pinned); and the
    recorded packages the served environment does not need (installed beside the model, not
    used by its runtime), left out of the lock."""

    versions: dict[str, str]
    overridden: list[tuple[str, str, str]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def pins(installed: Mapping[str, str], recorded: Mapping[str, str]) -> Pins:
    """The installed closure's versions with the recorded ones winning; keelwork itself is
    left out (it goes in as the wheel of this installation).

    Args:
        installed: Versions of the distributions keelwork (with its extras) needs, as installed.
        recorded: The packages recorded with the model version.
    """
    versions = {canonical(k): v for k, v in installed.items()}
    overridden, unused = [], []
    for name, version in recorded.items():
        key = canonical(name)
        if key == "keelwork":
            continue
        if key not in versions:
            unused.append(key)
        elif versions[key] != version:
            overridden.append((key, versions[key], str(version)))
            versions[key] = str(version)
    versions.pop("keelwork", None)
    return Pins(dict(sorted(versions.items())), overridden, sorted(unused))


def requirements_in(extras: list[str], keelwork_version: str, versions: Mapping[str, str]) -> str:
    """The lock's input: keelwork with its extras, then every pin."""
    extra = f"[{','.join(extras)}]" if extras else ""
    lines = ["# keel build: what the served environment needs, pinned (input of the lock).",
             f"keelwork{extra}=={keelwork_version}"]
    lines += [f"{name}=={version}" for name, version in versions.items()]
    return "\n".join(lines) + "\n"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Reduced:
    """keel.yaml cut down for the image, and what was left out (one line each)."""

    spec: dict[str, Any]
    notes: list[str]


def reduce_spec(raw: Mapping[str, Any], name: str, runtime: str, artifact: str,
                options: Mapping[str, Any], reference: str | None) -> Reduced:
    """The project's keel.yaml for serving one version of ``name`` from the image.

    Args:
        raw: keel.yaml as parsed (plain data).
        name: The model served.
        runtime: Its runtime kind (the version's).
        artifact: The artifact's path in the context, relative to keel.yaml.
        options: Runtime options: keel.yaml's, with the version's recorded ones over them.
        reference: The monitoring reference's path in the context, or None (none declared).

    Raises:
        BuildError: keel.yaml declares online features (files and tables of the project the
            image cannot take along).
    """
    spec = copy.deepcopy(dict(raw))
    notes: list[str] = []
    features = _mapping(spec.get("features"))
    if any(features.get(k) for k in features):
        raise BuildError("keel.yaml declares online features ('features:'); their sources are "
                         "files and tables of this project, which keel build does not package "
                         "yet. Build from a keel.yaml without them.")
    models = [m for m in spec.get("models") or [] if isinstance(m, Mapping)]
    section: dict[str, Any] = next((dict(m) for m in models if m.get("name") == name),
                                   {"name": name})
    others = [str(m.get("name")) for m in models if m.get("name") != name]
    if others:
        notes.append(f"models {', '.join(others)}: left out (the image serves {name} only)")
    if section.pop("fallback", None) is not None:
        notes.append(f"models[{name}].fallback: left out (it names another model)")
    if section.pop("tests", None) is not None:
        notes.append(f"models[{name}].tests: left out (tests gate rollouts of the registry, "
                     "which stays here)")
    section.update(runtime=runtime, artifact=artifact)
    if options:
        section["options"] = dict(options)
    else:
        section.pop("options", None)
    spec["models"] = [section]
    for key, why in DROPPED_SECTIONS.items():
        if spec.pop(key, None):
            notes.append(f"{key}: left out ({why})")
    storage = dict(_mapping(spec.get("storage")))
    for key in DROPPED_STORAGE:
        if storage.pop(key, None) is not None:
            notes.append(f"storage.{key}: left out (a store of this machine; the image keeps "
                         "its own under /app/.keel, or set KEELWORK_STORAGE_URL)")
    if storage:
        spec["storage"] = storage
    else:
        spec.pop("storage", None)
    monitoring = _mapping(spec.get("monitoring"))
    if monitoring:
        spec["monitoring"] = {**monitoring, "reference": reference} if reference else {
            k: v for k, v in monitoring.items() if k != "reference"}
    return Reduced(spec, notes)


#: Never sent to the builder: nothing else than what the Dockerfile copies belongs here.
DOCKERIGNORE = """\
# keel build: the Dockerfile copies only what it names.
**
!Dockerfile
!requirements.lock
!wheels/
!keel.yaml
!model/
!data/
"""


@dataclass(frozen=True)
class ImageSpec:
    """What the Dockerfile says: the base image, the model it serves and where things are."""

    base: str
    model: str
    version: int
    sha256: str | None
    port: int
    has_data: bool
    keelwork_version: str
    labels: dict[str, str] = field(default_factory=dict)


def _label(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dockerfile(image: ImageSpec) -> str:
    """The Dockerfile of the context.

    Dependencies come from the lock only (``--require-hashes --no-deps``: no resolution at
    build time, every file checked against its hash); keelwork from the wheel beside it. The
    server runs as :data:`USER`; keel.yaml, the model and its data are owned by root, files
    0444 and folders 0555, so a compromised server cannot change what it serves; it writes only
    its store under ``/app/.keel``.
    """
    port = image.port
    # The slim images have no curl: the probe is Python's (a 503 raises, so it exits 1).
    probe = ("import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
             f"'http://127.0.0.1:{port}/v2/health/ready', timeout=2).status == 200 else 1)")
    labels = {"org.opencontainers.image.title": f"{image.model} version {image.version}",
              "io.keelwork.model": image.model, "io.keelwork.version": str(image.version),
              "io.keelwork.keelwork-version": image.keelwork_version, **image.labels}
    if image.sha256:
        labels["io.keelwork.artifact-sha256"] = image.sha256
    label_lines = " \\\n      ".join(f"{k}={_label(v)}" for k, v in labels.items())
    data_copy = f"COPY data/ {APP_DIR}/data/\n" if image.has_data else ""
    read_only = f"{APP_DIR}/keel.yaml {APP_DIR}/model" + (
        f" {APP_DIR}/data" if image.has_data else "")
    return f"""\
# Written by `keel build {image.model}@{image.version}`: serves that version with `keel serve`.
# Build: podman build --format docker -t {image.model}:{image.version} .   (or docker build;
#        podman's default OCI format drops the HEALTHCHECK)
# Run:   podman run -p {port}:{port} {image.model}:{image.version}
FROM {image.base}

LABEL {label_lines}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency pinned, with its hashes; keelwork is the wheel of the installation that
# registered the model.
COPY requirements.lock /tmp/keel-build/requirements.lock
COPY wheels/ /tmp/keel-build/wheels/
RUN pip install --no-deps --require-hashes --only-binary=:all: \\
        --find-links /tmp/keel-build/wheels -r /tmp/keel-build/requirements.lock \\
    && rm -rf /tmp/keel-build

RUN groupadd --gid {UID} {USER} \\
    && useradd --uid {UID} --gid {USER} --no-create-home \\
        --home-dir /nonexistent --shell /usr/sbin/nologin {USER}

WORKDIR {APP_DIR}
COPY keel.yaml {APP_DIR}/keel.yaml
COPY model/ {APP_DIR}/model/
{data_copy}# Read-only for the server: owned by root, files 0444, folders 0555. Its store (SQLite,
# spool) is the one place it writes.
RUN chown -R root:root {APP_DIR} \\
    && find {read_only} -type d -exec chmod 0555 {{}} + \\
    && find {read_only} -type f -exec chmod 0444 {{}} + \\
    && chmod 0555 {APP_DIR} \\
    && mkdir -m 0700 {APP_DIR}/.keel \\
    && chown {USER}:{USER} {APP_DIR}/.keel

USER {UID}:{UID}
EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \\
    CMD {json.dumps(["python", "-c", probe])}
ENTRYPOINT ["keel", "serve"]
CMD {json.dumps([f"{APP_DIR}/keel.yaml", "--host", "0.0.0.0", "--port", str(port)])}
"""


__all__ = [
    "APP_DIR",
    "DEFAULT_BASE",
    "DOCKERIGNORE",
    "DROPPED_SECTIONS",
    "DROPPED_STORAGE",
    "RUNTIME_EXTRAS",
    "UID",
    "USER",
    "ImageSpec",
    "Pins",
    "Reduced",
    "base_image",
    "canonical",
    "dockerfile",
    "extras_for",
    "lock_platform",
    "pins",
    "python_version",
    "reduce_spec",
    "requirements_in",
]
