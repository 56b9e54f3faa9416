"""docs/pii.md's Python example runs as written (its assertions are the checks)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[4] / "docs" / "pii.md"


def test_the_example_of_docs_pii_runs() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "docs_pii"})


def test_the_docs_list_every_builtin_entity() -> None:
    from keelwork.core.pii import BUILTIN_ENTITIES

    text = DOC.read_text()
    assert all(f"| `{entity}` |" in text for entity in BUILTIN_ENTITIES)
