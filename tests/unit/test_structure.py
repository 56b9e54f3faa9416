"""The shape of the tree (issue 14): no import cycles, small modules, one home for errors and seams.

tests/unit/test_package.py checks that imports point down the layers; these check what keeps
each room small and findable.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "keelwork"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ("keelwork", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """Every keelwork module ``module`` imports, at any depth of the file (function-level
    imports included: a cycle through a lazy import is still a cycle of concerns)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for candidate in (target, *(f"{target}.{a.name}" for a in node.names)):
                if candidate in known:
                    out.add(candidate)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
    out.discard(module)
    return out


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def test_no_import_cycles() -> None:
    modules = _modules()
    known = set(modules)
    graph = {m: _imported(m, p, known) for m, p in modules.items()}
    cycles = list(_cycles(graph))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(_cycles(graph)) == [["a", "b", "c"]]


def test_modules_are_small() -> None:
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _classes(path: Path) -> Iterator[ast.ClassDef]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            yield node


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
        elif isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name):
            names.add(base.value.id)
    return names


def _error_names() -> set[str]:
    return {c.name for c in _classes(SRC / "errors.py")}


BUILTIN_ERRORS = {"Exception", "ValueError", "TypeError", "RuntimeError", "KeyError",
                  "LookupError", "OSError", "TimeoutError", "PermissionError"}


# Error classes that stay where they are, and why.
LOCAL_ERRORS = {
    # Raised and caught inside the HTTP layer; it carries an HTTP status, which errors.py and
    # everything below interfaces/http must not know about.
    "interfaces/http/errors.py: HTTPProblem",
    # Control flow inside the HTTP layer: carries the 401/403 Response of an info route's key check.
    "interfaces/http/context.py: Denied",
}


def test_every_error_class_lives_in_errors_py() -> None:
    errors = _error_names() | BUILTIN_ERRORS
    stray = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in _classes(path):
            # Private control-flow exceptions (never raised to a caller) may stay local.
            if node.name.startswith("_") or f"{path.relative_to(SRC)}: {node.name}" in LOCAL_ERRORS:
                continue
            if _base_names(node) & errors:
                stray.append(f"{path.relative_to(SRC)}: {node.name}")
    assert not stray, "error classes outside errors.py:\n" + "\n".join(stray)


def test_every_protocol_lives_in_types_py() -> None:
    stray = [f"{path.relative_to(SRC)}: {node.name}"
             for path in SRC.rglob("*.py") if path != SRC / "types.py"
             for node in _classes(path)
             if "Protocol" in _base_names(node) and not node.name.startswith("_")]
    assert not stray, "Protocols outside types.py:\n" + "\n".join(stray)


def test_error_leaves_inherit_the_root() -> None:
    tree = {c.name: _base_names(c) for c in _classes(SRC / "errors.py")}

    def rooted(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "KeelworkError":
            return True
        return any(b in tree and b not in seen and rooted(b, seen | {name})
                   for b in tree.get(name, ()))

    exceptions = [n for n, bases in tree.items() if bases & (BUILTIN_ERRORS | set(tree))]
    loose = [n for n in exceptions if not rooted(n)]
    assert not loose, f"errors.py classes not under KeelworkError: {loose}"


def test_adapter_subfolders_do_not_import_each_other() -> None:
    """adapters/<room>/ (runtimes, stores, data, embedders) are siblings: the service layer wires
    them together; one never reaches into another (counting function-level imports)."""
    modules = _modules()
    known = set(modules)
    crossing = []
    for module, path in modules.items():
        parts = module.split(".")
        if len(parts) < 4 or parts[1] != "adapters":
            continue
        for target in _imported(module, path, known):
            t = target.split(".")
            if len(t) >= 3 and t[1] == "adapters" and t[2] != parts[2]:
                crossing.append(f"{module} -> {target}")
    assert not crossing, "adapters subfolders importing each other:\n" + "\n".join(crossing)
