"""Loading what keel.yaml's ``features`` section points at: transform modules and history files.

``features.modules`` lists Python files (``features.py``, ``lib/feats.py``: relative to
keel.yaml) or importable module names (``mypkg.features``). Importing them runs their
``@feature_transform`` decorators, which fill the transform registry; then
:func:`compile_features` resolves the spec's transforms against it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from keelwork.core.features import DEFAULT_REGISTRY, FeaturePipeline, TransformRegistry
from keelwork.errors import ErrorDetail, SpecError
from keelwork.spec.features import EntitySpec
from keelwork.spec.model import ResolvedSpec


def _is_path(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def _module_name(path: Path) -> str:
    # Unique per file: two projects' features.py must not share one sys.modules entry.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"keelwork_features_{path.stem}_{digest}"


def _failure(index: int, entry: str, exc: BaseException) -> SpecError:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    message = (f"features.modules[{index}]: importing {entry!r} raised "
               f"{type(exc).__name__}: {exc}{where}.")
    return SpecError(message, [ErrorDetail(f"features.modules[{index}]", "module_import",
                                           entry, message)])


def load_feature_modules(resolved: ResolvedSpec) -> list[ModuleType]:
    """Import every module of ``features.modules`` (each once per process; files by path).

    Args:
        resolved: The loaded keel.yaml (relative paths resolve against its directory).

    Returns:
        The imported modules, in order.

    Raises:
        SpecError: a file is missing, a module cannot be found, or importing one raised.
    """
    out: list[ModuleType] = []
    for i, entry in enumerate(resolved.spec.features.modules):
        if _is_path(entry):
            path = resolved.resolve_path(entry).resolve()
            if not path.is_file():
                message = (f"features.modules[{i}]: no such file {str(path)!r} (paths are "
                           "relative to keel.yaml).")
                raise SpecError(message, [ErrorDetail(f"features.modules[{i}]", "file_missing",
                                                      entry, message)])
            name = _module_name(path)
            loaded = sys.modules.get(name)
            if loaded is not None:
                out.append(loaded)
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                message = f"features.modules[{i}]: {str(path)!r} is not an importable file."
                raise SpecError(message, [ErrorDetail(f"features.modules[{i}]", "module_import",
                                                      entry, message)])
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[name]
                raise _failure(i, entry, exc) from exc
            out.append(module)
        else:
            added = str(resolved.project_dir) not in sys.path
            if added:  # a package next to keel.yaml, as the user's own scripts would see it
                sys.path.insert(0, str(resolved.project_dir))
            try:
                out.append(importlib.import_module(entry))
            except ModuleNotFoundError as exc:
                message = (f"features.modules[{i}]: no module named {exc.name or entry!r} "
                           "(give a .py path relative to keel.yaml, or install the package).")
                raise SpecError(message, [ErrorDetail(f"features.modules[{i}]",
                                                      "module_missing", entry, message)]) from exc
            except Exception as exc:
                raise _failure(i, entry, exc) from exc
            finally:
                if added:
                    sys.path.remove(str(resolved.project_dir))
    return out


def compile_features(resolved: ResolvedSpec,
                     registry: TransformRegistry | None = None) -> FeaturePipeline:
    """Import ``features.modules``, then compile ``features.transforms`` against the registry.

    Args:
        resolved: The loaded keel.yaml.
        registry: The registry the modules register into (default: the global one).

    Returns:
        The compiled pipeline.

    Raises:
        SpecError: a module failed to load, or a transform names no registered function.
    """
    load_feature_modules(resolved)
    return FeaturePipeline(resolved.spec.features,
                           registry if registry is not None else DEFAULT_REGISTRY)


def read_source(path: str | Path, *, columns: list[str] | None = None) -> Any:
    """Read a data file (CSV, TSV, Parquet, JSON lines; optionally gzipped) into a table.

    Args:
        path: The file.
        columns: Only these columns (all when None).

    Returns:
        A ``pyarrow.Table``.

    Raises:
        DataFileError: the file is missing, unreadable, malformed, of an unknown kind, has no
            rows or lacks one of ``columns`` (file, line and column named).
    """
    from keelwork.adapters.data.readers import read_table

    return read_table(path, columns=columns)


def read_history(resolved: ResolvedSpec, entity: EntitySpec) -> tuple[Any, str]:
    """An entity's history table (only the columns it uses) and its path, for messages.

    Args:
        resolved: The loaded keel.yaml.
        entity: The entity.

    Returns:
        ``(table, path)``.

    Raises:
        DataFileError: the file cannot be read or lacks a column.
    """
    path = resolved.resolve_path(entity.source)
    wanted = list(dict.fromkeys([entity.key, entity.timestamp, *entity.features]))
    return read_source(path, columns=wanted), str(path)


__all__ = ["compile_features", "load_feature_modules", "read_history", "read_source"]
