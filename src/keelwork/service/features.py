"""Features as use-cases: build a training set point-in-time, materialise entities, look one up.

The online store is the ``storage_url`` setting (``KEELWORK_STORAGE_URL``), else keel.yaml's
``storage.url``, else ``sqlite:///<project>/.keel/keel.db``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.projects import Status, spec_storage_url

if TYPE_CHECKING:
    from keelwork.adapters.stores.features import FeatureStore
    from keelwork.core.features import TrainingSetBuilder
    from keelwork.spec.features import EntitySpec
    from keelwork.spec.model import ResolvedSpec
    from keelwork.spec.settings import Settings

#: The suffixes a training set may be written as.
TRAINING_SET_SUFFIXES = (".parquet", ".pq", ".csv")


def find_entity(resolved: ResolvedSpec, name: str) -> EntitySpec:
    """The entity of ``features.entities`` called ``name``.

    Raises:
        SpecError: keel.yaml declares no such entity.
    """
    for e in resolved.spec.features.entities:
        if e.name == name:
            return e
    known = ", ".join(e.name for e in resolved.spec.features.entities) or "none"
    raise SpecError(f"{resolved.path} declares no entity named {name!r} under features.entities "
                    f"(entities: {known}).", [ErrorDetail("features.entities", "unknown_entity",
                                                          name)])


def training_set_builder(resolved: ResolvedSpec, status: Status) -> TrainingSetBuilder:
    """Import the feature modules, compile the transforms and read every entity's history.

    Args:
        resolved: The loaded keel.yaml.
        status: Shown while the histories are read.

    Raises:
        SpecError: keel.yaml declares no features, or a module or transform fails.
        DataFileError: a history file cannot be read.
    """
    from keelwork.adapters.data.feature_modules import compile_features, read_history
    from keelwork.core.features import TrainingSetBuilder

    section = resolved.spec.features
    if not section.entities and not section.transforms:
        raise SpecError(f"{resolved.path} declares no features (features.entities and "
                        "features.transforms are empty); nothing to build.",
                        [ErrorDetail("features", "empty")])
    pipeline = compile_features(resolved)
    histories: dict[str, Any] = {}
    sources: dict[str, str] = {}
    with status("reading entity histories"):
        for e in section.entities:
            histories[e.name], sources[e.name] = read_history(resolved, e)
        return TrainingSetBuilder(section, pipeline, histories, sources=sources)


def read_rows(data: Path) -> Any:
    """The raw training rows (a ``pyarrow.Table``).

    Raises:
        DataFileError: the file cannot be read.
    """
    from keelwork.adapters.data.feature_modules import read_source

    return read_source(data)


def write_training_set(table: Any, out: Path) -> None:
    """Write a training set to ``out`` (.parquet or .csv) via ``OUT.partial``.

    Raises:
        DataFileError: it cannot be written (no file is left behind).
    """
    from keelwork.adapters.data.tables import write_table_atomic

    write_table_atomic(table, out, failure="cannot write the training set")


def open_feature_store(resolved: ResolvedSpec, settings: Settings) -> FeatureStore:
    """The project's online feature store (see the module for which)."""
    from keelwork.adapters.stores.features import open_feature_store as open_store

    return open_store(spec_storage_url(resolved, settings))


def materialize(resolved: ResolvedSpec, entities: Sequence[EntitySpec], up_to: float | str, *,
                settings: Settings, status: Status) -> list[Any]:
    """Write each entity's latest values as of ``up_to`` from its history to the online store.

    Returns:
        One materialisation result per entity.
    """
    from keelwork.adapters.data.feature_modules import read_history

    store = open_feature_store(resolved, settings)
    results = []
    try:
        for e in entities:
            with status(f"materialising {e.name}"):
                table, source = read_history(resolved, e)
                results.append(store.materialize(e, table, up_to=up_to, source=source))
    finally:
        store.close()
    return results


def lookup(resolved: ResolvedSpec, entity: EntitySpec, key: str, *,
           settings: Settings) -> Any:
    """What serving would see for one key: its latest stored values, or None."""
    store = open_feature_store(resolved, settings)
    try:
        return store.lookup_stored(entity.name, [key])[0]
    finally:
        store.close()


__all__ = ["TRAINING_SET_SUFFIXES", "find_entity", "lookup", "materialize",
           "open_feature_store", "read_rows", "training_set_builder", "write_training_set"]
