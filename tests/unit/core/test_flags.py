"""Model flags: targeting, sticky percentages, and evaluation that never raises."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from keelwork.core.flags import (
    DEFAULT,
    DISABLED,
    ERROR,
    SPLIT,
    TARGETING_MATCH,
    FlagContext,
    FlagSet,
    bucket,
    evaluate,
    parse_flags,
)
from keelwork.spec import parse_spec
from keelwork.spec.flags import FlagSpec


def _flag(**kw: Any) -> FlagSpec:
    body: dict[str, Any] = {"name": "f", "model": "m", "rules": []} | kw
    return FlagSpec.model_validate(body)


def test_first_matching_rule_wins_and_all_conditions_must_hold() -> None:
    flag = _flag(rules=[
        {"tenants": ["acme"], "headers": {"X-Region": ["eu"]}, "serve": "3"},
        {"tenants": ["acme"], "serve": "@challenger"},
    ], default="2")
    both = evaluate(flag, FlagContext("acme", {"x-region": "eu"}))
    assert (both.ref, both.reason, both.rule) == ("3", TARGETING_MATCH, 0)
    tenant_only = evaluate(flag, FlagContext("acme", {"x-region": "us"}))
    assert (tenant_only.ref, tenant_only.rule) == ("challenger", 1)
    nobody = evaluate(flag, FlagContext("other", {}))
    assert (nobody.ref, nobody.reason) == ("2", DEFAULT)


def test_percentage_is_sticky_close_to_its_share_and_grows_monotonically() -> None:
    ten = _flag(rules=[{"percentage": 10, "serve": "challenger"}])
    thirty = _flag(rules=[{"percentage": 30, "serve": "challenger"}])
    users = [f"user-{i}" for i in range(20_000)]
    picked10 = {u for u in users
                if evaluate(ten, FlagContext(None, {"x-keel-user": u})).reason == SPLIT}
    picked30 = {u for u in users
                if evaluate(thirty, FlagContext(None, {"x-keel-user": u})).reason == SPLIT}
    assert 0.09 < len(picked10) / len(users) < 0.11
    assert 0.28 < len(picked30) / len(users) < 0.32
    assert picked10 <= picked30  # raising the percentage only adds users
    again = {u for u in users
             if evaluate(ten, FlagContext(None, {"x-keel-user": u})).reason == SPLIT}
    assert again == picked10


def test_buckets_are_independent_between_flags() -> None:
    same = sum(bucket("a", str(i)) < 5000 and bucket("b", str(i)) < 5000 for i in range(10_000))
    assert 2200 < same < 2800  # ~ 25 % when independent, 50 % when identical


def test_disabled_flag_and_empty_set_choose_nothing() -> None:
    flag = _flag(enabled=False, rules=[{"tenants": ["acme"], "serve": "3"}])
    assert evaluate(flag, FlagContext("acme")).reason == DISABLED
    assert FlagSet([flag]).choose("m", FlagContext("acme")) is None
    assert FlagSet().choose("m", FlagContext("acme")) is None


def test_an_evaluation_that_blows_up_falls_back_and_is_counted() -> None:
    class Exploding(dict[str, str]):
        def get(self, *_: Any) -> Any:  # type: ignore[override]
            raise RuntimeError("boom")

    flag = _flag(rules=[{"headers": {"x-a": ["1"]}, "serve": "3"}], default="2")
    ev = evaluate(flag, FlagContext(None, Exploding()))
    assert ev.reason == ERROR and ev.ref == "2" and "boom" in (ev.error or "")
    flags = FlagSet([flag])
    assert flags.choose("m", FlagContext(None, Exploding())).ref == "2"  # type: ignore[union-attr]
    assert flags.errors() == {"f": 1}


def test_broken_stored_bodies_are_reported_never_fatal() -> None:
    flags = parse_flags([
        {"name": "good", "model": "m", "rules": [{"tenants": ["t"], "serve": "3"}]},
        {"name": "bad", "model": "m", "rules": [{"serve": "3"}]},  # a rule with no condition
        {"name": "worse", "model": "m", "rules": "nope"},
    ])
    assert [f.name for f in flags.flags] == ["good"]
    assert sorted(b.name for b in flags.broken) == ["bad", "worse"]
    assert flags.choose("m", FlagContext("t")).ref == "3"  # type: ignore[union-attr]
    assert flags.choose("m", FlagContext("x")) is None
    assert flags.errors() == {"bad": 1, "worse": 1}


def test_later_bodies_replace_earlier_ones_by_name() -> None:
    flags = parse_flags([{"name": "f", "model": "m", "rules": [{"tenants": ["t"],
                                                                  "serve": "1"}]},
                         {"name": "f", "model": "m", "rules": [{"tenants": ["t"],
                                                                  "serve": "2"}]}])
    assert flags.choose("m", FlagContext("t")).ref == "2"  # type: ignore[union-attr]
    assert Counter(f.name for f in flags.flags) == {"f": 1}


@pytest.mark.parametrize("bad", [
    {"name": "f", "model": "m", "rules": [{"serve": "1"}]},
    {"name": "f", "model": "m", "rules": [{"percentage": 101, "serve": "1"}]},
    {"name": "f", "model": "m", "rules": [{"tenants": ["t"], "serve": "no spaces"}]},
    {"name": "f", "model": "m", "unknown": 1},
])
def test_invalid_flags_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FlagSpec.model_validate(bad)


def test_keel_yaml_flags_must_name_a_model_of_the_spec() -> None:
    base = ("service: {name: s, owners: [a@b.c]}\n"
            "models: [{name: m, runtime: python, artifact: 'x:y'}]\n")
    ok = parse_spec(base + "flags: [{name: f, model: m, rules: [{tenants: [t], serve: '2'}]}]\n")
    assert ok.flags[0].rules[0].serve == "2"
    with pytest.raises(Exception, match="not a model"):
        parse_spec(base + "flags: [{name: f, model: other, rules: []}]\n")
