"""``keelwork.adapters.stores.review_store``: verdicts are counted per item (skips apart), and
only the items meant to be double-labelled are paired for agreement, whatever verdicts an item
that wants one holds (a store written before such verdicts were refused)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from keelwork.adapters.stores.review_store import ReviewStore, review_items
from review_project import review_project


def test_only_items_meant_to_be_double_labelled_are_paired(tmp_path: Path) -> None:
    p = review_project(tmp_path, [{"text": "one"}, {"text": "two"}, {"text": "three"}])
    try:
        single, double, skipped = p.ids
        with p.engine.begin() as conn:
            conn.execute(update(review_items).where(
                review_items.c.prediction_id == double).values(wanted=2))
        store = ReviewStore(p.engine)
        store.record(single, "ana", "question")
        store.record(single, "bob", "praise")  # past what the item wants
        store.record(double, "ana", "bug")
        store.record(double, "bob", "bug")
        store.record(skipped, "ana", None)
        assert store.double_labelled() == [("ana", '"bug"', "bob", '"bug"')]
        assert [store.verdicts(i) for i in p.ids] == [2, 2, 0]
    finally:
        p.engine.dispose()
