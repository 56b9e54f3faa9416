"""The OpenFeature provider, through the real OpenFeature client API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from keelwork.core.flags import parse_flags
from keelwork.service.flags.openfeature import KeelFlagProvider
from keelwork.service.flags.source import FlagSource
from keelwork.spec.flags import FlagSpec


@pytest.fixture
def client() -> Iterator[OpenFeatureClient]:
    source = FlagSource([FlagSpec.model_validate({
        "name": "eu", "model": "sentiment", "default": "champion", "rules": [
            {"tenants": ["acme"], "serve": "3"},
            {"headers": {"region": ["eu"]}, "serve": "challenger"},
            {"percentage": 50, "serve": "4"}]})])
    source.current = parse_flags([f.model_dump() for f in source.current.flags]
                                 + [{"name": "bad", "model": "sentiment", "rules": 1}])
    api.set_provider(KeelFlagProvider(source))
    yield api.get_client()
    api.clear_providers()


def test_targeting_and_split_reach_openfeature_callers(client: OpenFeatureClient) -> None:
    acme = client.get_string_details("eu", "x", EvaluationContext("u1", {"tenant": "acme"}))
    assert (acme.value, acme.reason, acme.variant) == ("3", Reason.TARGETING_MATCH, "rule-0")
    eu = client.get_string_details("eu", "x", EvaluationContext("u1", {"region": "eu"}))
    assert eu.value == "challenger"
    users = [client.get_string_details("eu", "x", EvaluationContext(f"user-{i}"))
             for i in range(2000)]
    split = sum(d.reason == Reason.SPLIT for d in users)
    assert 900 < split < 1100
    assert {d.value for d in users} == {"4", "champion"}
    again = client.get_string_value("eu", "x", EvaluationContext("user-7"))
    assert again == users[7].value  # sticky by targeting key


def test_missing_broken_and_mistyped_flags_answer_the_default(client: OpenFeatureClient) -> None:
    missing = client.get_string_details("nope", "fallback")
    assert (missing.value, missing.error_code) == ("fallback", ErrorCode.FLAG_NOT_FOUND)
    broken = client.get_string_details("bad", "fallback")
    assert (broken.value, broken.error_code) == ("fallback", ErrorCode.PARSE_ERROR)
    typed = client.get_boolean_details("eu", False)
    assert (typed.value, typed.error_code) == (False, ErrorCode.TYPE_MISMATCH)
