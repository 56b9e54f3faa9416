"""Bounds on client-controlled values: stored JSON, metric labels, addressable references."""

from __future__ import annotations

import random
import string
from typing import Any

import orjson
import pytest

from keelwork.core.bounds import (
    MAX_DEPTH,
    TRUNCATED,
    UNKNOWN_FIELD,
    bound_json,
    metric_field,
    ref_allowed,
)


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"x": value}
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_small_values_are_kept_as_they_are() -> None:
    value = {"a": 1.5, "b": [1, 2, None], "c": {"d": "text", "e": True}}
    assert bound_json(value, 4096) == (value, False)


@pytest.mark.parametrize("max_bytes", [64, 256, 4096, 65536])
@pytest.mark.parametrize("make", [
    lambda: {f"k{i}": "v" * 30 for i in range(10_000)},  # 340 KB of keys
    lambda: ["x" * 100_000],  # one long string
    lambda: list(range(100_000)),
    lambda: _deep(500),  # deeper than orjson encodes (it stops at 255)
    lambda: [[[["\u00e9\"\\" * 20_000]]]],  # escapes grow the encoding
])
def test_large_values_are_cut_to_the_bound_and_stay_json(make: Any, max_bytes: int) -> None:
    out, cut = bound_json(make(), max_bytes)
    encoded = orjson.dumps(out)
    assert cut
    assert len(encoded) <= max_bytes
    assert orjson.loads(encoded) == out
    assert TRUNCATED in encoded.decode()
    assert _depth(out) <= MAX_DEPTH + 1


def test_a_cut_container_counts_what_it_left_out() -> None:
    out, cut = bound_json({f"k{i}": i for i in range(1000)}, 512)
    assert cut
    kept = len(out) - 1
    assert 0 < kept < 1000 and out[TRUNCATED] == 1000 - kept
    assert all(out[f"k{i}"] == i for i in range(kept))
    deep, _ = bound_json(_deep(40), 4096)
    assert orjson.dumps(deep).count(b'"x"') == MAX_DEPTH
    assert f'"{TRUNCATED}":"depth"'.encode() in orjson.dumps(deep)


def test_odd_objects_become_text() -> None:
    out, _ = bound_json({"s": {1, 2}, "n": float("nan")}, 4096)
    assert isinstance(orjson.loads(orjson.dumps(out)), dict | str)


def test_metric_field_takes_only_contract_names() -> None:
    known = {"age", "emb"}
    assert metric_field("instances[3].age", known) == "age"
    assert metric_field("instances[3].emb[4]", known) == "emb"
    assert metric_field("instances[3].emb.x", known) == "emb"
    assert metric_field("instances[3]", known) == "instances"
    assert metric_field("instances", known) == "instances"
    rng = random.Random(7)
    labels = {metric_field(f"instances[{i}]." + "".join(rng.choices(string.printable, k=12)),
                           known) for i in range(10_000)}
    assert labels == {UNKNOWN_FIELD}


@pytest.mark.parametrize(("policy", "ref", "allowed"), [
    ("any", "3", True), ("any", "challenger", True), ("any", None, True),
    ("aliases", "3", False), ("aliases", " 03", False), ("aliases", "challenger", True),
    ("aliases", "champion", True), ("aliases", None, True),
    ("champion", "3", False), ("champion", "challenger", False),
    ("champion", "champion", True), ("champion", None, True),
])
def test_ref_allowed(policy: Any, ref: str | None, allowed: bool) -> None:
    assert ref_allowed(policy, ref) is allowed
