"""The V1 predict route served a batch at a time (``keel serve --engine mosec``): each request
parsed and refused on its own with keelwork's JSON error body, each admitted request answered
with its own V1 body, a failed batch call answered alike for all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from keelwork.errors import ContractViolation, ErrorDetail, ModelTimeout
from keelwork.interfaces.http.batch_answers import BatchAnswers, render
from keelwork.service.batch_predict import Admitted, Answer


class Worker:
    """A worker whose contract wants every instance to be a list of two numbers."""

    project_dir = Path("/srv/project")

    def __init__(self, classes: tuple[Any, ...] | None = (0, 1),
                 fail: Exception | None = None) -> None:
        self._classes = classes
        self.fail = fail

    def admit(self, instances: list[Any], probabilities: bool) -> Admitted:
        bad = [ErrorDetail(f"instances[{i}]", "arity", len(x)) for i, x in enumerate(instances)
               if len(x) != 2]
        if bad:
            raise ContractViolation("1 field violates the contract", bad)
        return Admitted(instances, probabilities)

    def classes(self) -> tuple[Any, ...] | None:
        return self._classes

    def predict(self, batch: list[Admitted]) -> list[Answer]:
        if self.fail is not None:
            raise self.fail
        return [Answer("m", 2, [sum(x) for x in a.instances], [f"id{i}"], "m:2",
                       [[0.5, 0.5]] if a.probabilities else None, (0, 1))
                for i, a in enumerate(batch)]


def test_a_valid_request_is_passed_on() -> None:
    status, item = BatchAnswers(Worker(), "m").admit(b'{"instances": [[1, 2]]}')
    assert status == 200 and item == Admitted([[1, 2]], False)
    status, item = BatchAnswers(Worker(), "m").admit(
        b'{"inputs": [[1, 2]], "parameters": {"probabilities": true}}')
    assert status == 200 and item == Admitted([[1, 2]], True)


def test_each_refusal_is_its_own_status_and_json_body_with_paths() -> None:
    answers = BatchAnswers(Worker(), "m")
    cases = {
        b'{"instances": [[1, 2], [1]]}': (422, "instances[1]", "arity"),
        b'{"instances": ': (400, "", "json"),
        b'{"rows": []}': (422, "instances", "required"),
        b'{"instances": [[1, 2]], "instances": []}': (400, "instances", "duplicate_key"),
        b'{"instances": [[1, 2]], "parameters": {"top_k": 3}}': (400, "parameters.top_k",
                                                                  "parameter"),
    }
    for body, (status, path, rule) in cases.items():
        got, raw = answers.admit(body)
        out = orjson.loads(raw)
        assert got == status, (body, out)
        assert raw.startswith(b'{"error":')  # what the Mosec worker splits the body on
        assert out["details"][0]["path"] == path, (body, out)
        assert out["details"][0]["rule"] == rule, (body, out)


def test_probabilities_of_a_model_without_classes_are_refused_not_ignored() -> None:
    status, raw = BatchAnswers(Worker(classes=None), "m").admit(
        b'{"instances": [[1, 2]], "parameters": {"probabilities": true}}')
    assert status == 400
    assert orjson.loads(raw)["details"][0]["path"] == "parameters.probabilities"


def test_a_batch_is_answered_one_v1_body_per_request() -> None:
    status, bodies = BatchAnswers(Worker(), "m").answer(
        [Admitted([[1, 2]]), Admitted([[3, 4]], True)])
    assert status == 200
    first, second = (orjson.loads(b) for b in bodies)
    assert first == {"predictions": [3], "model_name": "m", "model_version": 2,
                     "prediction_ids": ["id0"], "answered_by": "m:2"}
    assert second["predictions"] == [7]
    assert second["probabilities"] == [{"0": 0.5, "1": 0.5}]


def test_a_failed_batch_call_answers_its_error_and_hides_server_paths() -> None:
    fail = ModelTimeout("model m did not answer within 1000 ms (/srv/project/models/m)", "m")
    status, bodies = BatchAnswers(Worker(fail=fail), "m").answer([Admitted([[1, 2]])])
    assert status == 504 and len(bodies) == 1
    out = orjson.loads(bodies[0])
    assert "/srv/project" not in out["error"]


def test_output_contract_warnings_are_rendered() -> None:
    answer = Answer("m", 1, [5], ["i"], "m:1",
                    warnings=[ErrorDetail("predictions[0].label", "max", 5, "at most 3")])
    out = orjson.loads(render(answer))
    assert out["warnings"] == [{"path": "predictions[0].label", "rule": "max", "got": 5,
                                "message": "the answer breaks the output contract: at most 3"}]
