"""Batch scoring checks a JSON-lines record as the request check would: by the keys it has.

An optional field a line leaves out passes; a required one breaks ``required`` (not
``nullable``); an explicit ``null`` is still null. The dead letter and the stored inputs hold
the record as its line had it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.prediction_store import PredictionReader
from keelwork.core.contracts import compile_contract
from keelwork.service.ingest import Ledger, ScoreHandler, ScoringModel, score_files
from keelwork.spec.contract import ContractSection

CONTRACT = ContractSection.model_validate({"inputs": [
    {"name": "x", "type": "float", "min": 0},
    {"name": "note", "type": "string", "required": False},
], "extra_fields": "ignore"})


class Doubler:
    """A model runtime that answers twice ``x``."""

    def predict(self, instances: list[Any]) -> list[Any]:
        return [2 * r["x"] for r in instances]


def test_an_omitted_optional_field_passes_and_an_omitted_required_one_is_required(
        tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"x": 1.0, "note": "a"},
        {"x": 2.0},                   # no note: accepted, as over HTTP
        {"note": "b"},                # no x: required
        {"x": 3.0, "note": None},     # null note: not nullable
    ]) + "\n")
    validator = compile_contract(CONTRACT)
    assert validator.validate({"x": 2.0}) == []  # the request check
    handler = ScoreHandler(ScoringModel("double", 1, Doubler()), validator)  # type: ignore[arg-type]
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        [result] = score_files(engine, [data], handler)
        assert (result.counts.ingested, result.counts.dead_lettered) == (2, 2)
        letters = Ledger(engine).dead_letters(kind="score")
        assert [(d.row, d.line, [(r["path"], r["rule"]) for r in d.reasons], d.raw)
                for d in letters] == [
            (2, 3, [("x", "required")], {"note": "b"}),
            (3, 4, [("note", "nullable")], {"x": 3.0, "note": None})]
        assert "is required but was not given" in letters[0].reasons[0]["message"]
        stored = {r.request_meta["row"]: r for r in
                  PredictionReader(engine).iter_records(model="double")}
        assert stored[1].inputs == {"x": 2.0} and stored[1].outputs == 4.0
        assert stored[0].inputs == {"x": 1.0, "note": "a"}
    finally:
        engine.dispose()
