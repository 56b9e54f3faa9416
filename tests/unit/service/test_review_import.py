"""``keelwork.service.review_import``: exported tasks come back as attributed, audited labels;
each record is reported on its own; unknown and erased predictions are refused, naming the
record; importing the same file again changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keelwork.adapters.stores.label_store import LabelStore
from keelwork.errors import SpecError
from keelwork.service.review import export
from keelwork.service.review_import import import_verdicts
from review_project import ReviewProject, review_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[ReviewProject]:
    got = review_project(tmp_path, [{"text": f"ticket {i}"} for i in range(4)])
    yield got
    got.engine.dispose()


def _annotate(task: dict[str, object], choice: str, who: int) -> dict[str, object]:
    return {**task, "annotations": [{"id": who, "completed_by": who, "was_cancelled": False,
                                     "result": [{"from_name": "label", "to_name": "input",
                                                 "type": "choices",
                                                 "value": {"choices": [choice]}}]}]}


def test_label_studio_round_trip(project: ReviewProject) -> None:
    tasks = export(project.engine, "label-studio")
    assert [t["data"]["keelwork"]["prediction_id"] for t in tasks] == project.ids
    done = [_annotate(tasks[0], "question", 11), _annotate(tasks[1], "praise", 12),
            tasks[2],  # not annotated yet
            _annotate(tasks[3], "purple", 11),  # not a class of the contract
            {**_annotate(tasks[0], "bug", 13),
             "data": {"keelwork": {"prediction_id": "not-queued"}}}]
    project.erase(project.ids[1])
    got = import_verdicts(project.resolved, project.engine, project.audit, "label-studio",
                          json.dumps(done), imported_by="ops")
    assert [(g.where, g.outcome) for g in got] == [
        ("record 1 annotation 1", "labelled"), ("record 2 annotation 1", "refused"),
        ("record 3", "skipped"), ("record 4 annotation 1", "refused"),
        ("record 5 annotation 1", "refused")]
    assert "no longer in the log" in got[1].message
    assert "purple" in got[3].message
    assert "'not-queued' is not in the review queue" in got[4].message
    labels = LabelStore(project.engine)
    stored = labels.get(project.ids[0])
    assert stored is not None and (stored.label, stored.source) == ("question",
                                                                    "review:label-studio:11")
    assert labels.get(project.ids[3]) is None
    [entry] = project.audit.query(action="review.label")
    assert entry.actor == "label-studio:11"
    assert entry.details["via"] == "import:label-studio by ops"
    # The same file again: what was recorded stays, and is reported as already there.
    again = import_verdicts(project.resolved, project.engine, project.audit, "label-studio",
                            json.dumps(done[:1]), imported_by="ops")
    assert [g.outcome for g in again] == ["already"]
    assert len(project.audit.query(action="review.label")) == 1


def test_argilla_round_trip(project: ReviewProject) -> None:
    records = export(project.engine, "argilla")
    records[0]["responses"] = [{"question_name": "label", "value": "praise",
                                "user_id": "u-9", "status": "submitted"}]
    got = import_verdicts(project.resolved, project.engine, project.audit, "argilla",
                          "\n".join(json.dumps(r) for r in records), imported_by="ops")
    assert [g.outcome for g in got] == ["labelled", "skipped", "skipped", "skipped"]
    stored = LabelStore(project.engine).get(project.ids[0])
    assert stored is not None and stored.source == "review:argilla:u-9"


def test_a_file_that_is_not_json_records_nothing(project: ReviewProject) -> None:
    with pytest.raises(SpecError, match="line 1 is not JSON"):
        import_verdicts(project.resolved, project.engine, project.audit, "argilla",
                        "fields,metadata\n", imported_by="ops")
