"""Reading verdicts back from Label Studio and Argilla files (keelwork.core.review_formats):
each shape those tools write, what is skipped, what is refused and where it is."""

from __future__ import annotations

import json

import pytest

from keelwork.core.review_formats import choices, coerce, parse_verdicts, read_records
from keelwork.spec.contract import FieldSpec

CATS = [FieldSpec(name="label", type="category", categories=[0, 1, "two"])]


def _ls_task(pid: str, *annotations: dict[str, object]) -> dict[str, object]:
    return {"id": 7, "data": {"text": "hi", "keelwork": {"prediction_id": pid}},
            "annotations": list(annotations)}


def _ann(choice: str, who: object, **extra: object) -> dict[str, object]:
    return {"id": 3, "completed_by": who, "result": [
        {"from_name": "label", "to_name": "input", "type": "choices",
         "value": {"choices": [choice]}}], **extra}


def test_label_studio_annotations_become_verdicts_typed_by_the_contract() -> None:
    text = json.dumps([
        _ls_task("p1", _ann("1", 12), _ann("two", {"id": 4, "email": "bo@x.org"})),
        _ls_task("p2"),
        _ls_task("p3", _ann("0", 5, was_cancelled=True)),
        {"data": {"text": "no id"}, "annotations": [_ann("1", 1)]},
        _ls_task("p4", {"completed_by": 2, "result": [
            {"from_name": "label", "value": {"choices": ["0", "1"]}}]}),
    ])
    got = parse_verdicts("label-studio", text, CATS)
    assert [(v.where, v.prediction_id, v.reviewer, v.label) for v in got[:2]] == [
        ("record 1 annotation 1", "p1", "label-studio:12", 1),
        ("record 1 annotation 2", "p1", "label-studio:bo@x.org", "two")]
    assert got[2].skipped == "not annotated yet" and got[2].prediction_id == "p2"
    assert got[3].skipped is not None and "cancelled" in got[3].skipped
    assert got[4].where == "record 4" and got[4].problem is not None
    assert "data.keelwork.prediction_id" in got[4].problem
    assert got[5].problem is not None and "2 values" in got[5].problem


@pytest.mark.parametrize("responses", [
    {"label": [{"value": "1", "user_id": "u-1"}]},  # the SDK's to_dict
    [{"question_name": "label", "value": "1", "user_id": "u-1", "status": "submitted"}],
    [{"values": {"label": {"value": "1"}}, "user_id": "u-1", "status": "submitted"}],  # REST
])
def test_argilla_responses_in_each_shape(responses: object) -> None:
    record = {"fields": {"text": "hi"}, "metadata": {"prediction_id": "p1"},
              "responses": responses}
    [v] = parse_verdicts("argilla", json.dumps([record]), CATS)
    assert (v.prediction_id, v.reviewer, v.label, v.problem) == ("p1", "argilla:u-1", 1, None)


def test_argilla_drafts_and_discards_are_skipped_and_jsonl_names_lines() -> None:
    lines = [
        {"metadata": {"prediction_id": "p1"}, "responses": [
            {"question_name": "label", "value": "0", "user_id": "a", "status": "draft"},
            {"question_name": "label", "value": "0", "user_id": "b", "status": "discarded"}]},
        {"metadata": {}, "responses": []},
        {"metadata": {"prediction_id": "p3"}},
    ]
    text = "\n".join(json.dumps(r) for r in lines) + "\n\n"
    got = parse_verdicts("argilla", text, CATS)
    assert [v.skipped for v in got[:2]] == ["response draft, not submitted",
                                           "response discarded, not submitted"]
    assert got[2].where == "line 2" and got[2].problem is not None
    assert got[3].where == "line 3" and got[3].skipped == "no response yet"


def test_files_that_are_not_json_are_refused_naming_the_line() -> None:
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_records('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="got a JSON int"):
        read_records("3")
    with pytest.raises(ValueError, match="label-studio or argilla"):
        parse_verdicts("csv", "[]", CATS)


def test_coerce_follows_the_first_output() -> None:
    assert coerce("1", CATS) == 1 and coerce("two", CATS) == "two"
    assert coerce("nine", CATS) == "nine"  # left for the label check to refuse
    assert coerce("true", [FieldSpec(name="y", type="boolean")]) is True
    assert coerce("2.5", [FieldSpec(name="y", type="float")]) == 2.5
    assert coerce("nan", [FieldSpec(name="y", type="float")]) == "nan"
    assert coerce("7", [FieldSpec(name="y", type="integer")]) == 7
    assert coerce("[1, 2]", []) == [1, 2] and coerce("plain", []) == "plain"


def test_choices_give_keys_and_keep_s_and_n_free() -> None:
    many = [FieldSpec(name="y", type="category", categories=[f"c{i}" for i in range(40)])]
    got = choices(many)
    keys = [c.key for c in got if c.key]
    assert keys[:10] == list("1234567890") and "s" not in keys and "n" not in keys
    assert len(set(keys)) == len(keys) and got[-1].key is None
    assert [c.text for c in choices([FieldSpec(name="y", type="boolean")])] == ["false", "true"]
    assert choices([FieldSpec(name="y", type="float")]) == []
    digits = choices([FieldSpec(name="y", type="category", categories=[0, 1, 2])])
    assert [(c.key, c.value) for c in digits] == [("0", 0), ("1", 1), ("2", 2)]
