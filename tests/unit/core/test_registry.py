"""Pure registry logic: model references, name/alias rules, metrics, the version record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.core.registry import (
    AliasChange,
    ModelRef,
    ModelSummary,
    ModelVersion,
    callable_from_uri,
    callable_uri,
    check_alias,
    check_metrics,
    check_model_name,
    check_version,
    is_callable_reference,
    next_version,
    parse_model_ref,
)
from keelwork.errors import ModelRefError, RegistryError

NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}\Z")


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize(("text", "expected"), [
    ("iris", ModelRef("iris")),
    ("iris:3", ModelRef("iris", version=3)),
    ("iris@champion", ModelRef("iris", alias="champion")),
    ("churn-v2.1@challenger", ModelRef("churn-v2.1", alias="challenger")),
    ("  iris:12 ", ModelRef("iris", version=12)),
    ("iris@latest", ModelRef("iris", alias="latest")),
])
def test_parse_model_ref_accepts_the_three_forms(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "must not be empty"),
    ("iris:", "invalid version ''"),
    ("iris:0", "invalid version '0'"),
    ("iris:-1", "invalid version '-1'"),
    ("iris:x", "invalid version 'x'"),
    ("iris@", "empty alias"),
    ("iris@3", "invalid alias '3'"),
    ("iris@a b", "invalid alias 'a b'"),
    ("iris:3@champion", "both a version and an alias"),
    ("-iris", "invalid model name '-iris'"),
    ("@champion", "invalid model name ''"),
    ("my model", "invalid model name 'my model'"),
    ("iris:99999999999999999999999", "invalid version '99999999999999999999999'"),
    ("iris@cham\npion", "invalid alias 'cham\\npion'"),
])
def test_parse_model_ref_rejects_malformed_references(text: str, fragment: str) -> None:
    with pytest.raises(ModelRefError) as info:
        parse_model_ref(text)
    assert fragment in str(info.value)
    assert "NAME:VERSION" in str(info.value)  # the message shows the accepted forms


@given(name=NAMES, version=st.integers(min_value=1, max_value=10**9))
def test_version_refs_round_trip_through_text(name: str, version: int) -> None:
    ref = ModelRef(name, version=version)
    assert parse_model_ref(str(ref)) == ref


@given(name=NAMES, alias=NAMES.filter(lambda a: not a.isdigit()))
def test_alias_refs_round_trip_through_text(name: str, alias: str) -> None:
    ref = ModelRef(name, alias=alias)
    assert parse_model_ref(str(ref)) == ref
    assert parse_model_ref(name) == ModelRef(name)


# --------------------------------------------------------------------------- rules
@pytest.mark.parametrize("name", ["iris", "a", "Churn_2.v-3", "9lives", "x" * 128])
def test_valid_model_names_pass(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", "_x", ".hidden", "a/b", "a:b", "a@b", "x" * 129, "é"])
def test_invalid_model_names_name_the_rule(name: str) -> None:
    with pytest.raises(RegistryError, match="must start with a letter or digit"):
        check_model_name(name)


def test_alias_rules() -> None:
    assert check_alias("champion") == "champion"
    assert check_alias("canary-2") == "canary-2"
    with pytest.raises(RegistryError, match="must not be a number"):
        check_alias("3")
    with pytest.raises(RegistryError, match="reserved"):
        check_alias("latest")
    with pytest.raises(RegistryError, match="invalid"):
        check_alias("two words")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2", 2**63])
def test_check_version_rejects_non_positive_or_non_int(bad: object) -> None:
    with pytest.raises(RegistryError, match=">= 1"):
        check_version(bad)  # type: ignore[arg-type]


def test_check_version_and_next_version() -> None:
    assert check_version(7) == 7
    assert next_version(None) == 1
    assert next_version(41) == 42


def test_metrics_must_be_finite_numbers() -> None:
    assert check_metrics(None) == {}
    assert check_metrics({"accuracy": 0.93, "n": 120}) == {"accuracy": 0.93, "n": 120}
    with pytest.raises(RegistryError, match=r"'auc' must be a finite number; got 'high'"):
        check_metrics({"auc": "high"})
    with pytest.raises(RegistryError, match="'loss' must be a finite number; got nan"):
        check_metrics({"loss": float("nan")})
    with pytest.raises(RegistryError, match="'ok' must be a finite number; got True"):
        check_metrics({"ok": True})
    with pytest.raises(RegistryError, match="non-empty strings"):
        check_metrics({"": 1.0})
    with pytest.raises(RegistryError, match="object of name -> number"):
        check_metrics([("a", 1.0)])  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "ok"), [
    ("my_pkg.model:predict", True),
    ("mod:fn", True),
    ("mod:Cls.method", True),
    ("model.skops", False),
    ("./mod:fn", False),
    ("C:/models/x.onnx", False),
    ("mod:", False),
    (":fn", False),
    ("a-b:fn", False),
])
def test_callable_reference_shape(text: str, ok: bool) -> None:
    assert is_callable_reference(text) is ok


def test_callable_uri_round_trip() -> None:
    uri = callable_uri("pkg.mod:fn")
    assert uri == "python:pkg.mod:fn"
    assert callable_from_uri(uri) == "pkg.mod:fn"
    assert callable_from_uri("sha256/ab/abcd/model.skops") is None


# --------------------------------------------------------------------------- records
def _version(**changes: object) -> ModelVersion:
    fields: dict[str, object] = {
        "name": "iris", "version": 2, "runtime": "sklearn",
        "artifact_uri": "sha256/ab/" + "ab" * 32 + "/model.skops", "sha256": "ab" * 32,
        "size": 1234, "created_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "created_by": "ana", "git_commit": "f" * 40, "git_dirty": False,
        "dataset_version": "2024-04", "metrics": {"accuracy": 0.9},
        "environment": {"python": "3.11.7"}, "options": {"method": "predict"},
        "aliases": ("champion",),
    }
    fields.update(changes)
    return ModelVersion(**fields)  # type: ignore[arg-type]


def test_model_version_as_dict_is_json_and_complete() -> None:
    mv = _version()
    data = json.loads(json.dumps(mv.as_dict()))
    assert data["created_at"] == "2024-05-01T12:00:00+00:00"
    assert data["aliases"] == ["champion"]
    assert set(data) == {f for f in ModelVersion.__dataclass_fields__}
    assert mv.ref == ModelRef("iris", version=2)
    assert not mv.is_reference
    assert mv.callable_path is None


def test_reference_versions_have_no_blob() -> None:
    mv = _version(runtime="python", artifact_uri=callable_uri("pkg:fn"), sha256=None, size=None)
    assert mv.is_reference
    assert mv.callable_path == "pkg:fn"


def test_model_version_is_immutable() -> None:
    mv = _version()
    with pytest.raises(AttributeError):
        mv.version = 3  # type: ignore[misc]


def test_alias_change_and_summary_serialise() -> None:
    when = datetime(2024, 5, 2, tzinfo=UTC)
    change = AliasChange("iris", "champion", 1, 2, "ana", "better AUC", when)
    assert change.as_dict() == {"name": "iris", "alias": "champion", "from_version": 1,
                                "to_version": 2, "actor": "ana", "reason": "better AUC",
                                "changed_at": "2024-05-02T00:00:00+00:00"}
    summary = ModelSummary("iris", 3, 3, {"champion": 2}, when, when)
    assert json.loads(json.dumps(summary.as_dict()))["aliases"] == {"champion": 2}
