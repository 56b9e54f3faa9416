"""The environment has one reader: ``keelwork.spec.settings`` (and keel.yaml's ``${VAR}``
interpolation in ``keelwork.spec.loader``). Everything else is handed the settings: they are made
only at the edges (``keel``'s commands, the HTTP server's start, ``keelwork.Project`` when given
none), never by a store, the core or a use-case."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "keelwork"
READERS = {"spec/settings.py", "spec/loader.py"}
#: The layers below the edges: handed the settings, they never make them.
INNER = ("adapters/", "core/", "service/")
#: The library edge: ``Project(path)`` without ``settings=`` reads them in its constructor.
MAKERS = {"service/project.py": {"Project.__init__"}}
#: What makes settings: the loader, or the class itself (it reads the environment).
MAKING = {"load_settings", "Settings"}


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines reading the environment anywhere in a module (function bodies included):
    ``os.environ``, ``os.getenv``, ``os.environb``, and the same names imported from ``os``."""
    names = {"environ", "environb", "getenv", "getenvb"}
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            imported |= {a.asname or a.name for a in node.names if a.name in names}
    def reads(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in names and isinstance(node.value, ast.Name) and \
                node.value.id == "os"
        if isinstance(node, ast.ImportFrom):
            return node.module == "os" and any(a.name in names for a in node.names)
        return isinstance(node, ast.Name) and node.id in imported

    lines = [node.lineno for node in ast.walk(tree) if reads(node)]
    return sorted(lines)


def test_only_the_settings_read_the_environment() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in READERS:
            continue
        lines = _environment_reads(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[rel] = lines
    assert not found, ("only keelwork.spec.settings reads the environment (take a Settings "
                       f"argument instead): {found}")


def test_the_check_sees_function_level_reads() -> None:
    code = ("import os\nfrom os import getenv as g\n"
            "def f():\n    return os.environ.get('X'), g('Y'), os.getenv('Z')\n")
    assert _environment_reads(ast.parse(code)) == [2, 4, 4, 4]


def test_the_readers_do_read_it() -> None:
    for rel in READERS:
        assert _environment_reads(ast.parse((SRC / rel).read_text(encoding="utf-8")))


def _settings_made(tree: ast.AST) -> dict[str, list[int]]:
    """Where a module imports ``load_settings`` or calls it or ``Settings(...)``, by the
    enclosing ``Class.function`` (``<module>`` at the top level)."""
    found: dict[str, list[int]] = {}

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name if where == "<module>" else f"{where}.{child.name}"
            makes = (isinstance(child, ast.ImportFrom)
                     and any(a.name == "load_settings" for a in child.names)) or (
                isinstance(child, ast.Call) and (
                    (isinstance(child.func, ast.Name) and child.func.id in MAKING)
                    or (isinstance(child.func, ast.Attribute) and child.func.attr in MAKING)))
            if makes:
                found.setdefault(inner, []).append(child.lineno)
            visit(child, inner)

    visit(tree, "<module>")
    return found


def test_only_the_edges_make_the_settings() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith(INNER):
            continue
        made = _settings_made(ast.parse(path.read_text(encoding="utf-8")))
        allowed = MAKERS.get(rel, set())
        lines = sorted(n for where, ns in made.items() if where not in allowed for n in ns)
        if lines:
            found[rel] = lines
    assert not found, ("adapters, core and service are handed the settings (a Settings "
                       f"argument, or the values a store needs); they never load them: {found}")


def test_the_settings_check_sees_imports_and_calls() -> None:
    code = ("from keelwork.spec.settings import Settings, load_settings\n"
            "class P:\n    def __init__(self):\n        self.s = Settings()\n"
            "def f():\n    import keelwork.spec.settings as m\n    return m.load_settings()\n")
    assert _settings_made(ast.parse(code)) == {"<module>": [1], "P.__init__": [4], "f": [7]}


def test_the_library_edge_does_make_them() -> None:
    for rel, allowed in MAKERS.items():
        made = _settings_made(ast.parse((SRC / rel).read_text(encoding="utf-8")))
        assert set(made) == allowed, made
