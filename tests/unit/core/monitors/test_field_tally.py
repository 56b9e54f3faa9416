"""Per-field verdicts of structured answers against object labels."""

from __future__ import annotations

import pytest

from keelwork.core.monitors.fields import FieldTally, same


@pytest.mark.parametrize(("answer", "truth", "equal"), [
    (4.11, 4.11, True), (4.11, 4.12, False), (319, 319.0, True), ("319.00", 319, True),
    ("BLR_WFLD2015", "#BLR_WFLD2015", True), ("Amazon Web Services, Inc.",
                                              "Amazon Web Services", False),
    ("QualityHosting AG", "qualityhosting ag", True), (None, "x", False), (None, None, True),
    ("x", None, False), ("2014-08-03", "2014-08-03", True), ("12", "12.0", False),
    (True, 1, False),
])
def test_same_after_normalisation(answer: object, truth: object, equal: bool) -> None:
    assert same(answer, truth) is equal


def test_tally_scores_the_fields_each_label_names() -> None:
    tally = FieldTally()
    tally.add({"amount": 10.0, "currency": "EUR"}, {"amount": 10.0, "currency": "USD"})
    tally.add({"amount": 5.0, "currency": "EUR"}, {"currency": "EUR"})  # no gold amount
    got = tally.as_dict()
    assert got["fields"] == {"amount": {"labelled": 1, "right": 1, "accuracy": 1.0},
                             "currency": {"labelled": 2, "right": 1, "accuracy": 0.5}}
    assert got["overall"] == {"labelled": 3, "right": 2, "accuracy": 2 / 3}
    assert FieldTally().as_dict() == {"fields": {}, "overall": {"labelled": 0, "right": 0,
                                                               "accuracy": None}}
