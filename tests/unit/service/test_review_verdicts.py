"""``keelwork.service.review``: an item takes the verdicts it wants and no more (a further
verdict would replace its label and pair up as a fake agreement); agreement is measured on the
items meant to be double-labelled only; a done item's label is still corrected as any label
is, through the label store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.review_store import ReviewStore, review_items
from keelwork.errors import KeelworkError
from keelwork.service.review import stats, verdict
from review_project import ReviewProject, review_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[ReviewProject]:
    got = review_project(tmp_path, [{"text": f"ticket {i}"} for i in range(3)])
    yield got
    got.engine.dispose()


def _double(p: ReviewProject, prediction_id: str) -> None:
    with p.engine.begin() as conn:
        conn.execute(update(review_items).where(
            review_items.c.prediction_id == prediction_id).values(wanted=2))


def _label(p: ReviewProject, prediction_id: str, reviewer: str, label: str) -> None:
    verdict(p.resolved, p.engine, p.audit, prediction_id, reviewer, label)


def test_a_verdict_on_an_item_that_has_its_verdict_is_refused_and_writes_nothing(
        project: ReviewProject) -> None:
    pid = project.ids[0]
    _label(project, pid, "ana", "question")
    with pytest.raises(KeelworkError, match="has the 1 verdict it wants already") as refused:
        _label(project, pid, "bob", "praise")
    assert [d.rule for d in refused.value.details] == ["review_done"]
    assert "POST /v1/feedback" in refused.value.message
    stored = LabelStore(project.engine).get(pid)
    assert stored is not None and (stored.label, stored.source) == ("question", "review:ana")
    assert [e.actor for e in project.audit.query(action="review.label")] == ["ana"]
    assert ReviewStore(project.engine).verdicts(pid) == 1
    got = stats(project.engine)
    assert got["agreement"] == [] and got["items"] == {"done": 1, "open": 2}


def test_the_same_reviewer_again_is_told_so_before_the_item_is_done(
        project: ReviewProject) -> None:
    pid = project.ids[0]
    _label(project, pid, "ana", "question")
    with pytest.raises(KeelworkError, match="judged") as twice:
        _label(project, pid, "ana", "bug")
    assert [d.rule for d in twice.value.details] == ["review_twice"]  # the import's "already"


def test_a_double_labelled_item_takes_two_verdicts_and_their_agreement_counts(
        project: ReviewProject) -> None:
    pid = project.ids[1]
    _double(project, pid)
    _label(project, pid, "ana", "bug")
    _label(project, pid, "bob", "praise")
    with pytest.raises(KeelworkError, match="has the 2 verdicts it wants already"):
        _label(project, pid, "carol", "bug")
    got = stats(project.engine)
    assert got["agreement"] == [{"reviewers": ["ana", "bob"], "items": 1, "agreement": 0.0,
                                 "kappa": 0.0}]
    stored = LabelStore(project.engine).get(pid)
    assert stored is not None and stored.source == "review:bob"


def test_a_done_items_label_is_still_corrected_through_the_label_store(
        project: ReviewProject) -> None:
    pid = project.ids[0]
    _label(project, pid, "ana", "question")
    LabelStore(project.engine).submit([{"prediction_id": pid, "label": "bug"}],
                                      source="api:admin")
    stored = LabelStore(project.engine).get(pid)
    assert stored is not None and (stored.label, stored.source) == ("bug", "api:admin")
