"""docs/architecture.md stays true: every module it cites exists, every room has its row.

A cited name is ``keelwork.a.b`` (a module or package, optionally followed by a name defined
at the top of that module or listed in its ``__all__``, or a method of a class there) or a path
``src/keelwork/a/b.py``.
Checked from the source files, without importing anything.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DOC = (ROOT / "docs" / "architecture.md").read_text()
_DOTTED = re.compile(r"\bkeelwork(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_PATH = re.compile(r"\bsrc/keelwork(?:/[A-Za-z0-9_.]+)*/?")


def _module_file(parts: list[str]) -> Path | None:
    base = SRC.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@cache
def _defined(path: Path) -> dict[str, set[str]]:
    """Top-level names of a module -> the names defined in each (methods, for a class)."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body
                                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: set() for t in targets if isinstance(t, ast.Name)})
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                # a lazy facade's names (keelwork.Project): exported, imported on first use
                for e in ast.walk(node.value):
                    if isinstance(e, ast.Constant) and isinstance(e.value, str):
                        names.setdefault(e.value, set())
        elif isinstance(node, ast.ImportFrom):
            names.update({a.asname or a.name: set() for a in node.names})
    return names


def _exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        path = _module_file(parts[:cut])
        if path is None:
            continue
        rest = parts[cut:]
        if not rest:
            return True
        defined = _defined(path)
        if rest[0] not in defined or len(rest) > 2:
            return False
        return len(rest) == 1 or rest[1] in defined[rest[0]]
    return False


def test_the_page_cites_modules() -> None:
    assert len(set(_DOTTED.findall(DOC))) >= 60


def test_every_cited_module_exists() -> None:
    missing = sorted({name for name in _DOTTED.findall(DOC) if not _exists(name)})
    assert not missing, f"docs/architecture.md cites what src/ does not hold: {missing}"


def test_every_cited_path_exists() -> None:
    missing = sorted({p for p in _PATH.findall(DOC) if not (ROOT / p).exists()})
    assert not missing, missing


def test_every_room_has_a_row() -> None:
    """Each package of src/keelwork is a room: the rooms table names it."""
    rooms = set(re.findall(r"^\| `(keelwork[a-z_.]*)`", DOC.split("## Rooms", 1)[1], re.M))
    packages = {".".join(p.parent.relative_to(SRC).parts)
                for p in (SRC / "keelwork").rglob("__init__.py")
                if "templates" not in p.parent.relative_to(SRC / "keelwork").parts[1:]}
    assert sorted(packages - rooms) == [], "add these packages to the rooms table"


def test_the_questions_of_issue_14_are_answered() -> None:
    table = DOC.split("## Where does X happen?", 1)[1].split("\n## ", 1)[0]
    for question in ("contract check of a request", "batching", "prediction log write",
                     "label join", "drift threshold", "rollout gate", "audit append"):
        row = re.search(rf"^\| {question} \|(.+)\|$", table, re.M)
        assert row is not None, question
        assert _DOTTED.search(row.group(1)), f"{question}: name the module"


def test_the_readme_links_it() -> None:
    assert "](docs/architecture.md)" in (ROOT / "README.md").read_text()
