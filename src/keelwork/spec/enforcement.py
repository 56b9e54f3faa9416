"""keel.yaml fields that this version accepts in the schema but does not enforce yet.

A field that is accepted and then ignored misleads: a user who writes ``latency_p99_ms: 50`` or
``pii_redaction: true`` believes something watches it. Until a running component enforces a
field, keel.yaml that sets it is refused, naming what will enforce it. Entries leave this table
when their component lands (with the test that proves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Path in keel.yaml -> what is missing. A section path covers every field under it.
NOT_ENFORCED: dict[tuple[str, ...], str] = {
    ("monitoring", "drift", "enabled"): "turning drift off is not built: every monitoring "
                                        "window computes drift",
    ("monitoring", "labels", "source"): "labels arrive by POST /v1/feedback and keel ingest "
                                        "--labels; choosing one source is not built",
}

#: Values that ask for nothing (drift on, no label source named), so they are accepted.
_NEUTRAL: dict[tuple[str, ...], tuple[Any, ...]] = {
    ("monitoring", "drift", "enabled"): (True,),
    ("monitoring", "labels", "source"): (None,),
}


def not_enforced(data: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """The fields ``data`` (keel.yaml as parsed) sets that nothing enforces yet.

    A section counts as set when it holds any field with a value other than null; a field,
    when its value asks for something (``pii_redaction: false`` asks for nothing).

    Returns:
        ``(path, why)`` per such field, in table order.
    """
    found: list[tuple[tuple[str, ...], str]] = []
    for path, why in NOT_ENFORCED.items():
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None or node in _NEUTRAL.get(path, ()):
            continue
        if isinstance(node, Mapping) and len(path) == 1:
            set_fields = [k for k, v in node.items() if v is not None]
            found.extend(((*path, str(k)), why) for k in set_fields)
        else:
            found.append((path, why))
    return found
