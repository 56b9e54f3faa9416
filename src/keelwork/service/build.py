"""``keel build NAME@V``: the container build context of one registered model version.

The folder holds everything ``podman build`` (or ``docker build``) needs, and nothing else:

- ``model/``: the version's artifact, copied from the artifact store and checked against the
  SHA-256 recorded with it;
- ``keel.yaml``: the project's, reduced to that one model (:func:`keelwork.core.container.
  reduce_spec`), its artifact and monitoring reference (``data/``) pointing into the context,
  and loaded once here so an image never ships a keel.yaml that does not validate;
- ``wheels/``: keelwork's own wheel, written from this installation
  (:mod:`keelwork.adapters.packaging.wheel`);
- ``requirements.in`` and ``requirements.lock``: the serving environment pinned: the versions
  recorded with the model, the installed versions of the rest of keelwork's closure, resolved
  by uv for the image's Python and platform with every file's hash
  (:mod:`keelwork.adapters.packaging.lock`);
- ``Dockerfile`` and ``.dockerignore`` (:func:`keelwork.core.container.dockerfile`).

The context is written into a fresh folder beside ``--out`` and moved into place when complete,
so a failed build leaves no half context; an ``--out`` with files in it is refused unless
``force``, which replaces only the entries keel build writes.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import BuildError, ModelNotFoundError

if TYPE_CHECKING:
    from keelwork.core.registry import ModelVersion
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings

#: What keel build writes into the context (``force`` replaces these, and only these).
ENTRIES = ("Dockerfile", ".dockerignore", "keel.yaml", "requirements.in", "requirements.lock",
           "model", "wheels", "data")


@dataclass(frozen=True)
class BuildContext:
    """A written build context and what went into it."""

    directory: Path
    model: str
    version: int
    base: str
    artifact: str
    pins: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "model": self.model, "version": self.version,
                "base": self.base, "artifact": self.artifact, "pins": self.pins,
                "notes": self.notes}


def version_ref(ref: str) -> str:
    """``NAME@3`` as the registry spells a version (``NAME:3``); other forms unchanged."""
    name, _, after = ref.partition("@")
    return f"{name}:{after}" if after.isdigit() else ref


def check_out(out: Path, *, force: bool) -> None:
    """Refuse an ``out`` that is a file, or a folder with files in it (unless ``force``).

    Raises:
        BuildError: naming the folder and what to do.
    """
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {str(out)!r} is a file, not a folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BuildError(f"--out {str(out)!r} is not empty; choose an empty or new folder, or "
                         "pass --force to replace the build context in it.")


def _read_raw(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    return dict(data) if isinstance(data, dict) else {}


def _write_yaml(path: Path, data: dict[str, Any], header: str) -> None:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")  # keeps keel.yaml's order of keys (the safe dumper sorts them)
    yaml.default_flow_style = False
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    path.write_text(header + buffer.getvalue(), encoding="utf-8")


def _copy_artifact(source: Path, target_dir: Path) -> Path:
    target_dir.mkdir()
    target = target_dir / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target


def build_context(project: Path, ref: str, out: Path | None, *, settings: Settings,
                  force: bool = False, base: str | None = None) -> BuildContext:
    """Write the build context of model version ``ref`` of ``project``.

    Args:
        project: The project directory (its keel.yaml and registry).
        ref: ``NAME@V`` (``NAME:V``, ``NAME@ALIAS`` and ``NAME`` work too).
        out: The context folder; default ``PROJECT/build/NAME-V``.
        settings: The process settings (which store the registry is in).
        force: Replace keel build's entries in an ``out`` that has files.
        base: The base image; default ``python:X.Y.Z-slim`` of the recorded Python.

    Returns:
        What was written.

    Raises:
        ModelNotFoundError / ModelRefError: the reference is unknown or malformed.
        SpecError: the project has no keel.yaml, or the reduced one does not validate.
        BuildError: ``out`` is in use, the version is a ``module:function`` reference, the
            lock does not resolve.
        MissingExtraError: uv (extra ``build``) is not installed.
    """
    from keelwork.service.projects import project_spec, registry

    resolved = project_spec(project, settings, needs="'keel build' serves its keel.yaml")
    name = version_ref(ref).partition("@")[0].partition(":")[0]
    with registry(project, settings=settings) as reg:
        if reg is None:
            raise ModelNotFoundError(f"No model named '{name}' is registered (this project has "
                                     "no registry yet); register it with 'keel models register'.")
        mv = reg.resolve(version_ref(ref))
        if mv.is_reference or mv.sha256 is None:
            raise BuildError(f"{mv.name}:{mv.version} is the code reference "
                             f"{mv.artifact_uri!r} (runtime python), not a stored artifact; keel "
                             "build packages stored artifacts only.")
        artifact = reg.artifacts.verify(mv.sha256)  # the bytes recorded, or an ArtifactError
    target = out if out is not None else project / "build" / f"{mv.name}-{mv.version}"
    check_out(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".keel-build-", dir=target.parent))
    try:
        context = _write(staging, resolved, mv, artifact, base)
        target.mkdir(exist_ok=True)
        for entry in ENTRIES:
            old = target / entry
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.exists() or old.is_symlink():
                old.unlink()
            if (staging / entry).exists():
                (staging / entry).rename(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return replace(context, directory=target)


def _write(staging: Path, resolved: ResolvedSpec, mv: ModelVersion, artifact: Path,
           base: str | None) -> BuildContext:
    """Everything of the context into ``staging``."""
    from keelwork.adapters.packaging.lock import compile_lock, installed_closure, lock_pins
    from keelwork.adapters.packaging.wheel import build_self_wheel
    from keelwork.core.container import (
        DOCKERIGNORE,
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
    from keelwork.service.models import spec_options
    from keelwork.spec import load_spec

    environment = dict(mv.environment)
    image_base = base or base_image(environment)
    copied = _copy_artifact(artifact, staging / "model")
    declared = any(m.name == mv.name for m in resolved.spec.models)
    options = spec_options(resolved, mv.name) if declared else {}
    options.update(mv.options)  # recorded with the version and verified with it: they win
    reference = None
    if resolved.spec.monitoring.reference:
        source = resolved.resolve_path(resolved.spec.monitoring.reference)
        if not source.is_file():
            raise BuildError(f"monitoring.reference names {str(source)!r}, which is not a file; "
                             "the image needs it to build its monitoring reference.")
        (staging / "data").mkdir()
        shutil.copy2(source, staging / "data" / source.name)
        reference = f"data/{source.name}"
    raw = _read_raw(resolved.path)
    reduced = reduce_spec(raw, mv.name, mv.runtime, f"model/{copied.name}", options, reference)
    _write_yaml(staging / "keel.yaml", reduced.spec,
                f"# keel build {mv.name}@{mv.version}: {resolved.path.name} of "
                f"{resolved.project_dir.name}, reduced to this version.\n")
    load_spec(staging / "keel.yaml")  # an image never ships a keel.yaml that does not load

    wheel = build_self_wheel(staging / "wheels")
    keelwork_version = wheel.name.split("-")[1]
    extras = extras_for(mv.runtime, reduced.spec)
    recorded = {k: str(v) for k, v in dict(environment.get("packages") or {}).items()}
    pinned = pins(installed_closure("keelwork", extras), recorded)
    notes = list(reduced.notes)
    notes += [f"{n}: {recorded_v} as recorded with the version (installed here: {installed})"
              for n, installed, recorded_v in pinned.overridden]
    if pinned.unused:
        notes.append(f"recorded but not needed to serve a {mv.runtime} model, left out of the "
                     f"lock: {', '.join(pinned.unused)}")
    if recorded.get("keelwork") not in (None, keelwork_version):
        notes.append(f"keelwork: the image gets this installation's {keelwork_version} (the "
                     f"version was registered under {recorded['keelwork']})")
    (staging / "requirements.in").write_text(
        requirements_in(extras, keelwork_version, pinned.versions), encoding="utf-8")
    compile_lock(staging, "requirements.in", "requirements.lock",
                 python=python_version(environment), platform=lock_platform(environment),
                 find_links="wheels", header=f"keel build {mv.name}@{mv.version}")
    (staging / "Dockerfile").write_text(dockerfile(ImageSpec(
        base=image_base, model=mv.name, version=mv.version, sha256=mv.sha256,
        port=resolved.spec.server.port or 8000, has_data=reference is not None,
        keelwork_version=keelwork_version)), encoding="utf-8")
    (staging / ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
    locked = lock_pins((staging / "requirements.lock").read_text(encoding="utf-8"))
    return BuildContext(staging, mv.name, mv.version, image_base, f"model/{copied.name}",
                        len(locked), notes)


__all__ = ["ENTRIES", "BuildContext", "build_context", "check_out", "version_ref"]
