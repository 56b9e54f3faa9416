"""A runtime answering the wrong number of outputs in the batched path: a 500 that says so, and a
failed request in the prediction log (before: an unlogged 500 "Internal error: BatchSizeError")."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.testclient import TestClient

from fixtures.faulty_models import MiscountingRuntime
from keelwork.core.predictions import PredictionRecord
from keelwork.interfaces.http.app import create_app
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {name: batch-size, owners: [t@example.com]}
models:
  - {name: miscount, runtime: python, artifact: "x:y",
     batching: {enabled: true, max_batch_size: 8, max_wait_ms: 2}}
contract:
  inputs: [{name: a, type: float}, {name: b, type: integer}]
"""


class Sink:
    """The prediction log: keeps what the gateway writes."""

    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    async def write(self, records: Sequence[PredictionRecord]) -> None:
        self.records.extend(records)


def test_wrong_output_count_is_a_500_naming_it_and_a_logged_failure() -> None:
    sink = Sink()
    gateway = Gateway(parse_spec(SPEC, env={}),
                      lambda name, _ref: ModelTarget(name, 1, "python", "x:y"),
                      lambda _target: MiscountingRuntime(), sink)
    body = {"instances": [{"a": 1.0, "b": 2}, {"a": 3.0, "b": 4}]}
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        r = client.post("/v1/models/miscount:predict", json=body)
    assert r.status_code == 500, r.text
    assert "the model returned 3 outputs for 2 inputs" in r.json()["error"]
    assert "Internal error" not in r.text
    # One failed record per instance, as for any failed request; nothing answered.
    assert [(rec.model, rec.version, rec.status) for rec in sink.records] == [
        ("miscount", 1, "error")] * 2, sink.records
    assert [rec.inputs for rec in sink.records] == body["instances"]
    for rec in sink.records:
        assert rec.request_meta["error_type"] == "BatchSizeError"
        assert rec.request_meta["error"] == "the model returned 3 outputs for 2 inputs"
