"""Parsing request bodies: orjson, plus a refusal of duplicate object keys.

JSON parsers keep the last of duplicate keys (``{"label": "a", "label": "b"}`` is ``"b"``);
which value a client meant is unknowable, so every body the server reads with one is refused
(400, naming the key and where it is).

The check costs one ``orjson.dumps`` of the parsed value and two byte counts, not a second
parse: outside strings, a colon in JSON is exactly one object key, and orjson writes colons
inside strings as themselves. So the body and the re-serialised value hold as many colons
exactly when no key was dropped; a body with at most one colon holds at most one key, so it
is not checked at all (a V1 body of array instances). A body that spells a colon as
``\\u003a`` is checked by the slow path (the standard library, key by key), which also finds
the key to name.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from keelwork.errors import ErrorDetail
from keelwork.interfaces.http.errors import HTTPProblem, clip


def check_media_type(content_type: str | None) -> None:
    """Refuse (415) a body whose ``Content-Type`` says it is not JSON; none given is taken
    as JSON. Every engine checks a predict body with this, so they answer alike.

    Raises:
        HTTPProblem: 415 naming the media type got.
    """
    if not content_type or content_type == "application/json":
        return  # the usual case: no parse at all
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct != "application/json" and not ct.endswith("+json"):
        raise HTTPProblem(415, "The body must be JSON (Content-Type: application/json); "
                               f"got {clip(ct, 80)!r}.",
                          [ErrorDetail("content-type", "media_type", clip(ct))])


def loads(raw: bytes) -> Any:
    """``raw`` parsed as JSON.

    Raises:
        HTTPProblem: 400 when it is empty, not JSON or an object repeats a key.
    """
    if not raw:
        raise HTTPProblem(400, "The request body is empty; send a JSON object.",
                          [ErrorDetail("", "json", None)])
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPProblem(400, f"The body is not valid JSON: {exc}.",
                          [ErrorDetail("", "json", str(exc)[:120])]) from None
    # Every key is followed by a literal colon: a body with at most one holds no repeat.
    colons = raw.count(b":")
    if colons > 1 and (b"\\u003" in raw or _colons(value) != colons):
        _refuse_duplicates(raw)
    return value


def _colons(value: Any) -> int:
    try:
        return orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: take the slow path
        return -1


def _refuse_duplicates(raw: bytes) -> None:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except _Duplicate as dup:
        raise HTTPProblem(
            400, f"The body repeats the key {clip(dup.key, 80)!r} in one object; JSON objects "
                 "must not have duplicate keys (which value was meant is unknowable).",
            [ErrorDetail(clip(dup.key), "duplicate_key", clip(dup.key))]) from None
    except (ValueError, RecursionError):
        return  # orjson accepted it; a standard-library limit is not the client's error


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
