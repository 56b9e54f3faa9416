"""The interfaces are thin (issue 14): they parse, call a use-case of ``keelwork.service`` and
render; they never open a store, read a file or load a model themselves, so no module under
``interfaces/`` imports ``keelwork.adapters``, not even inside a function or for type checking.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "keelwork"
INTERFACES = SRC / "interfaces"

# Modules allowed to import an adapter, each with the reason. None since the http step of issue 14:
# the HTTP app takes its stores from service/server_parts, the commands call service/ use-cases.
STILL_IMPORTING: dict[str, str] = {}


def _adapter_imports(path: Path) -> list[str]:
    """Every ``keelwork.adapters`` module ``path`` imports, at any depth of the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("keelwork.adapters")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "keelwork":
                found += [f"keelwork.{a.name}" for a in node.names if a.name == "adapters"]
            elif node.module.startswith("keelwork.adapters"):
                found.append(node.module)
    return found


def test_no_interface_module_imports_an_adapter() -> None:
    problems = []
    for path in sorted(INTERFACES.rglob("*.py")):
        rel = str(path.relative_to(SRC))
        if rel in STILL_IMPORTING:
            continue
        problems += [f"{rel}: imports {name}" for name in _adapter_imports(path)]
    assert not problems, ("interfaces must call keelwork.service, not adapters:\n"
                          + "\n".join(problems))


def test_the_exceptions_are_real_modules() -> None:
    missing = [rel for rel in STILL_IMPORTING if not (SRC / rel).is_file()]
    assert not missing, f"stale entries in STILL_IMPORTING: {missing}"


def test_the_finder_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n"
                      "    from keelwork.adapters.stores.engine import Engine\n"
                      "def f():\n"
                      "    import keelwork.adapters.data.atomic\n"
                      "    from keelwork import adapters\n")
    assert _adapter_imports(module) == ["keelwork.adapters.stores.engine",
                                        "keelwork.adapters.data.atomic",
                                        "keelwork.adapters"]
