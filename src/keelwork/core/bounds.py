"""Bounds on what clients control: stored payloads, metric labels, addressable references.

Pure functions (no I/O). Each turns a value a client chose into one whose size or variety the
operator bounds: a refused instance stored at most ``max_bytes`` of JSON, a metric label taken
from a fixed set, a model reference checked against ``guards.version_refs``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final, Literal

import orjson

#: Marker key of a container (or a whole value) that was cut short.
TRUNCATED: Final = "$truncated"
#: The label value every field name outside the contract collapses into.
UNKNOWN_FIELD: Final = "_unknown"
#: Deepest nesting kept of a stored refused value; deeper parts become a marker.
MAX_DEPTH: Final = 16

VersionRefs = Literal["any", "aliases", "champion"]

#: The lists a contract path may start with (requests' instances, models' answers).
_RECORD_LISTS: Final = frozenset({"instances", "outputs"})


def bound_json(value: Any, max_bytes: int) -> tuple[Any, bool]:
    """A JSON-serialisable copy of ``value`` whose encoding is at most ``max_bytes`` long.

    Containers keep their first items while the budget lasts, then gain a ``"$truncated"``
    entry counting what was left out; strings are cut; nesting deeper than
    :data:`MAX_DEPTH` becomes ``{"$truncated": "depth"}``. When even that encodes larger
    than ``max_bytes``, the result is ``{"$truncated": "size", "json": <a prefix of the
    encoding>}``. The work done is proportional to ``max_bytes``, never to ``value``'s size.

    Args:
        value: Any value (as parsed from JSON; other objects are kept as their ``repr``).
        max_bytes: Largest encoding returned, in bytes (at least 64).

    Returns:
        ``(bounded value, whether anything was left out)``.
    """
    max_bytes = max(64, max_bytes)
    pruner = _Pruner(max_bytes)
    out = pruner.prune(value, 0)
    try:
        encoded = orjson.dumps(out)
    except (orjson.JSONEncodeError, TypeError):  # odd floats or keys: keep text, never fail
        encoded = orjson.dumps(repr(out)[:max_bytes])
        pruner.cut = True
        out = orjson.loads(encoded)
    if len(encoded) <= max_bytes:
        return out, pruner.cut
    room = max_bytes - 40
    prefix = encoded[:room].decode("utf-8", "ignore")
    while len(orjson.dumps({TRUNCATED: "size", "json": prefix})) > max_bytes and prefix:
        prefix = prefix[: len(prefix) * 3 // 4]  # escapes grew it: shrink until it fits
    return {TRUNCATED: "size", "json": prefix}, True


class _Pruner:
    """Copies a value depth-first, spending a byte budget (an estimate; checked after)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.cut = False

    def prune(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool | int | float):
            self.budget -= 8
            return value
        if isinstance(value, str):
            return self._text(value)
        if depth >= MAX_DEPTH:
            self.cut = True
            self.budget -= 24
            return {TRUNCATED: "depth"}
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            self.budget -= 2
            for i, (k, v) in enumerate(value.items()):
                if self.budget <= 0:
                    self.cut = True
                    out[TRUNCATED] = len(value) - i
                    break
                out[self._text(str(k))] = self.prune(v, depth + 1)
            return out
        if isinstance(value, list | tuple):
            items: list[Any] = []
            self.budget -= 2
            for i, v in enumerate(value):
                if self.budget <= 0:
                    self.cut = True
                    items.append({TRUNCATED: len(value) - i})
                    break
                items.append(self.prune(v, depth + 1))
            return items
        return self._text(repr(value))

    def _text(self, text: str) -> str:
        room = max(16, self.budget)
        if len(text) > room:
            self.cut = True
            text = text[:room] + "..."
        self.budget -= len(text) + 3
        return text


def metric_field(path: str, known: Collection[str]) -> str:
    """The ``field`` label of a contract violation at ``path``: a contract field or a constant.

    ``instances[3].age`` -> ``age``; ``instances[3].emb[4]`` -> ``emb``; a field the contract
    does not declare (the client's own key) -> :data:`UNKNOWN_FIELD`; a whole record or the
    batch -> ``instances`` (``outputs`` for answers). The label set is therefore the
    contract's field names plus three.
    """
    head, sep, tail = path.partition("].")
    if not sep:  # a whole record, or the batch: named by its list
        top = head.split("[", 1)[0]
        return top if top in _RECORD_LISTS else UNKNOWN_FIELD
    name = tail
    for i, ch in enumerate(tail):
        if ch in ".[":
            name = tail[:i]
            break
    return name if name in known else UNKNOWN_FIELD


def ref_allowed(policy: VersionRefs, ref: str | None) -> bool:
    """Whether a client may address ``ref`` under ``guards.version_refs``.

    ``None`` (no reference: routing decides) is always allowed; ``champion`` (the default
    alias) too. ``aliases`` forbids version numbers; ``champion`` forbids every other ref.
    """
    if ref is None or policy == "any" or ref == "champion":
        return True
    if policy == "aliases":
        return not ref.strip().isdigit()
    return False


__all__ = ["MAX_DEPTH", "TRUNCATED", "UNKNOWN_FIELD", "VersionRefs", "bound_json",
           "metric_field", "ref_allowed"]
