"""The invoice case study's parts: gold files, the confidence floors the contract sets, the
simulated reviewer, and before/after scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelwork.errors import DataFileError
from keelwork.service.case_studies.invoices import (
    confidence_floors,
    correction,
    flagged,
    load_invoices,
    outcome,
)
from keelwork.spec.contract import ContractSection, FieldSpec

CONTRACT = ContractSection(outputs=[
    FieldSpec(name="amount", type="float", nullable=True),
    FieldSpec(name="issuer", type="string", nullable=True),
    FieldSpec(name="amount_confidence", type="float", min=0.8),
    FieldSpec(name="issuer_confidence", type="float", min=0.7),
    FieldSpec(name="score", type="float", min=0.0),
])


def test_floors_come_from_confidence_outputs_with_a_min() -> None:
    assert confidence_floors(CONTRACT) == {"amount": 0.8, "issuer": 0.7}


def test_the_reviewer_corrects_only_flagged_fields() -> None:
    floors = {"amount": 0.8, "issuer": 0.7}
    answer = {"amount": 9.0, "amount_confidence": 0.5, "issuer": "Acme",
              "issuer_confidence": 0.9}
    gold = {"amount": 10.0, "issuer": "Acme Corp"}
    assert flagged(answer, floors) == ["amount"]
    fixed = correction(answer, gold, floors)
    assert fixed["amount"] == 10.0 and fixed["issuer"] == "Acme"  # a confident error stays
    assert flagged({"amount": 1.0}, floors) == ["amount", "issuer"]  # no confidence: flagged


def test_outcome_counts_before_after_and_the_review_work() -> None:
    floors = {"amount": 0.8, "issuer": 0.8}
    answers = [{"amount": 9.0, "amount_confidence": 0.5, "issuer": "A", "issuer_confidence": 0.9},
               {"amount": 3.0, "amount_confidence": 0.9, "issuer": "B", "issuer_confidence": 0.9}]
    golds = [{"amount": 10.0, "issuer": "A"}, {"amount": 4.0, "issuer": "B"}]
    finals = [correction(answers[0], golds[0], floors),
              {"amount": 3.0, "issuer": "B"}]
    got = outcome(answers, finals, golds, reviewed=[True, False], floors=floors)
    assert got["before"]["overall"] == {"labelled": 4, "right": 2, "accuracy": 0.5}
    assert got["after"]["overall"] == {"labelled": 4, "right": 3, "accuracy": 0.75}
    assert (got["reviewed_documents"], got["flagged_fields"], got["flagged_wrong"],
            got["corrected_fields"], got["confident_errors"]) == (1, 1, 1, 1, 1)


def test_load_reads_text_documents_and_their_gold(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps([{"issuer": "B", "amount": None,
                                                  "lines": []}]))
    (tmp_path / "b.txt").write_text("Total 4.00\n")
    (tmp_path / "a.json").write_text(json.dumps([{"currency": "EUR"}]))
    (tmp_path / "a.txt").write_text("5 €\n")
    got = load_invoices(tmp_path)
    assert [(i.name, i.gold, i.text) for i in got] == [("a", {"currency": "EUR"}, "5 €\n"),
                                                       ("b", {"issuer": "B"}, "Total 4.00\n")]


@pytest.mark.parametrize(("body", "doc", "why"), [
    ("{", True, "not JSON"), ("{}", True, "list of one object"),
    ("[{}]", False, "no document"),
])
def test_load_names_a_bad_gold_file(tmp_path: Path, body: str, doc: bool, why: str) -> None:
    (tmp_path / "x.json").write_text(body)
    if doc:
        (tmp_path / "x.txt").write_text("t")
    with pytest.raises(DataFileError, match=why) as caught:
        load_invoices(tmp_path)
    assert "x.json" in str(caught.value)
