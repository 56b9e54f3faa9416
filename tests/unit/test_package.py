"""Package-level promises: a light import, and imports that point down only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "keelwork"
HEAVY = ("numpy", "pandas", "torch", "onnxruntime", "sklearn", "transformers", "mlflow",
         "pyarrow", "sqlalchemy", "fastapi")


@pytest.mark.parametrize("module", ["keelwork", "keelwork.spec", "keelwork.errors",
                                    "keelwork.types"])
def test_import_does_not_load_heavy_libraries(module: str) -> None:
    code = (f"import sys, {module}; heavy = {HEAVY!r}; "
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"'import {module}' loaded {out}"


def test_cli_start_up_does_not_load_heavy_libraries() -> None:
    code = ("import sys; from keelwork.interfaces.cli import main; "
            f"heavy = {HEAVY!r}; print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert set(filter(None, out.split(","))) <= set(), f"'keel' start-up loaded {out}"


# layer -> layers it may import from (besides itself and the top-level seams)
ALLOWED = {
    "spec": {"spec"},
    "core": {"spec", "core"},
    "adapters": {"spec", "core", "adapters"},
    "service": {"spec", "core", "adapters", "service"},
    "interfaces": {"spec", "core", "adapters", "service", "interfaces", "templates"},
    "templates": set(),
}
TOP = {"errors", "types", "__init__"}
FORBIDDEN_IN_CORE = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "typer", "rich",
                     "psycopg", "ray", "prometheus_client")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_point_down_only() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        layer = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if layer in TOP or layer not in ALLOWED:
            continue
        for name in _imports(path):
            parts = name.split(".")
            if (parts[0] == "keelwork" and len(parts) > 1 and parts[1] not in TOP
                    and parts[1] not in ALLOWED[layer]):
                problems.append(f"{rel}: imports {name} ({layer} -> {parts[1]})")
            if layer in ("core", "spec") and parts[0] in FORBIDDEN_IN_CORE:
                problems.append(f"{rel}: imports {name} (no web/CLI/DB library in {layer})")
    assert not problems, "\n".join(problems)


def test_seams_import_nothing_from_layers() -> None:
    for top in ("errors.py", "types.py"):
        for name in _imports(SRC / top):
            parts = name.split(".")
            if parts[0] == "keelwork" and parts[1] not in ("core",):
                raise AssertionError(f"{top} imports {name}")


# Outside adapters/stores, SQLAlchemy appears only as the types that carry a transaction from
# one store to another, and make_url (to show a storage URL): every table and statement is a
# store's (issue 14).
SQL_TYPES_OUTSIDE_STORES = {"Engine", "Connection", "make_url"}
STORE_INTERNALS = ("keelwork.adapters.stores.sql", "keelwork.adapters.stores.ingest_tables")


def test_sql_lives_in_the_stores() -> None:
    problems = []
    stores = SRC / "adapters" / "stores"
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(stores):
            continue
        rel = path.relative_to(SRC)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                problems += [f"{rel}: import {a.name}" for a in node.names
                             if a.name.split(".")[0] == "sqlalchemy"]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] == "sqlalchemy":
                    problems += [f"{rel}: from {node.module} import {a.name}"
                                 for a in node.names if a.name not in SQL_TYPES_OUTSIDE_STORES]
                elif node.module in STORE_INTERNALS:
                    problems.append(f"{rel}: imports {node.module} (a store's tables or SQL)")
    assert not problems, "\n".join(problems)
