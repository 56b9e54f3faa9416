"""What a refused request leaves behind: bounded metric series, bounded stored records."""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keelwork.adapters.stores.prediction_store import record_to_row
from keelwork.core.bounds import TRUNCATED, UNKNOWN_FIELD
from keelwork.core.predictions import PredictionRecord
from keelwork.errors import ContractViolation, KeelworkError, ModelNotFoundError
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec

SPEC = """\
service: {name: t, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "x:y", batching: {enabled: false}}
contract:
  inputs:
    - {name: age, type: float, min: 0}
    - {name: emb, type: tensor, shape: [2], required: false}
storage: {max_rejected_input_bytes: 2048}
"""


class Runtime:
    kind = "fake"

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        return [0 for _ in instances]

    def unload(self) -> None:
        return None


class Sink:
    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    async def write(self, records: Sequence[PredictionRecord]) -> None:
        self.records.extend(records)


def _gateway() -> tuple[Gateway, Sink]:
    def resolve(name: str, ref: str | None) -> ModelTarget:
        if ref not in (None, "1", "champion"):
            raise ModelNotFoundError(f"no ref {ref!r}")
        return ModelTarget(name, 1, "python", "x:y")

    sink = Sink()
    return Gateway(parse_spec(SPEC, env={}), resolve, lambda _t: Runtime(), sink), sink


def _series(gw: Gateway, family: str | None = None) -> int:
    text = gw.metrics.render()[0].decode()
    return sum(len(f.samples) for f in text_string_to_metric_families(text)
               if family is None or f.name == family)


def _random_key(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "._[]", k=16))


def test_ten_thousand_random_keys_add_no_series() -> None:
    async def main() -> None:
        gw, _ = _gateway()
        await gw.start()
        rng = random.Random(13)
        for _ in range(20):  # 10,000 random keys, 500 per request
            instance = {"age": -1, **{_random_key(rng): 1 for _ in range(500)}}
            with pytest.raises(ContractViolation):
                await gw.predict("m", None, [instance])
        # other client-chosen text: unknown models and references
        for _ in range(200):
            with pytest.raises(ModelNotFoundError):
                await gw.predict(_random_key(rng), None, [{"age": 1}])
            with pytest.raises(KeelworkError):  # malformed (400) or unknown (404)
                await gw.predict("m", _random_key(rng), [{"age": 1}])
        text = gw.metrics.render()[0].decode()
        fields = {s.labels["field"] for f in text_string_to_metric_families(text)
                  if f.name == "keelwork_contract_violations" for s in f.samples}
        assert fields == {"age", UNKNOWN_FIELD}
        assert _series(gw, "keelwork_contract_violations") <= 2 * 2 * 2  # fields x rules x2
        # a second wave of the same adds nothing at all
        before = _series(gw)
        for _ in range(5):
            with pytest.raises(ContractViolation):
                await gw.predict("m", None, [{"age": -2,
                                              **{_random_key(rng): 1 for _ in range(500)}}])
        assert _series(gw) == before
        await gw.close()

    asyncio.run(main())


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"x": value}
    return value


@pytest.mark.parametrize("instance", [
    {"age": -1, **{f"key{i:05d}": "v" * 20 for i in range(10_000)}},  # ~340 KB
    {"age": "x" * 300_000},
    {"age": -1, "deep": _deep(500)},
], ids=["many-keys", "long-string", "500-deep"])
def test_refused_inputs_are_stored_as_bounded_json(instance: dict[str, Any]) -> None:
    async def main() -> list[PredictionRecord]:
        gw, sink = _gateway()
        await gw.start()
        with pytest.raises(ContractViolation):
            await gw.predict("m", None, [instance])
        await gw.close()
        return sink.records

    (record,) = asyncio.run(main())
    assert record.status == "rejected"
    row = record_to_row(record)
    stored = orjson.loads(row["inputs"])
    assert isinstance(stored, dict)  # JSON of the instance, not a Python repr
    assert len(row["inputs"].encode()) <= 2048
    assert len(orjson.dumps(record.request_meta["violations"])) <= 2048
    assert TRUNCATED in row["inputs"]
    truncated = record.request_meta["truncated"]
    assert "inputs" in truncated["fields"] and truncated["max_bytes"] == 2048
    assert len(row["request_meta"]) <= 2 * 2048 + 512


def test_small_refused_inputs_are_stored_whole() -> None:
    async def main() -> list[PredictionRecord]:
        gw, sink = _gateway()
        await gw.start()
        with pytest.raises(ContractViolation):
            await gw.predict("m", None, [{"age": -3, "emb": [1, 2]}])
        await gw.close()
        return sink.records

    (record,) = asyncio.run(main())
    assert record.inputs == {"age": -3, "emb": [1, 2]}
    assert "truncated" not in record.request_meta
    assert record.request_meta["violations"][0]["path"] == "instances[0].age"


def test_many_bad_instances_cost_a_bounded_answer_and_each_record_its_own_problems() -> None:
    """20,000 refused instances: the 422 names the first problems and counts the rest; each
    stored record holds its own instance's problem, not the request's whole list (which was
    stored 20,000 times); the metric counts every checked problem once."""
    n = 20_000

    async def main() -> tuple[list[PredictionRecord], ContractViolation, Gateway]:
        gw, sink = _gateway()
        await gw.start()
        with pytest.raises(ContractViolation) as info:
            await gw.predict("m", None, [{"age": -float(i + 1)} for i in range(n)])
        await gw.close()
        return sink.records, info.value, gw

    records, err, gw = asyncio.run(main())
    from keelwork.service.gateway.dispatch import MAX_PROBLEMS

    assert len(err.details) == MAX_PROBLEMS + 1
    assert err.details[-1].rule == "more_problems" and err.details[-1].got == n - MAX_PROBLEMS
    assert len(records) == n and {r.status for r in records} == {"rejected"}
    for i in (0, 1, MAX_PROBLEMS - 1):
        assert [v["path"] for v in records[i].request_meta["violations"]] == [
            f"instances[{i}].age"]
        assert records[i].inputs == {"age": -float(i + 1)}
    # Past the named problems each record still says the request was refused and why.
    late = records[n - 1].request_meta["violations"]
    assert [v["rule"] for v in late] == ["more_problems"]
    stored = sum(len(record_to_row(r)["request_meta"] or "") for r in records)
    assert stored < 400 * n  # was ~4 KiB per record
    text = gw.metrics.render()[0].decode()
    counted = [s.value for f in text_string_to_metric_families(text)
               if f.name == "keelwork_contract_violations" for s in f.samples
               if s.name.endswith("_total") and s.labels.get("rule") == "min"]
    assert counted == [float(MAX_PROBLEMS)]


def test_a_long_subject_from_the_contract_is_clipped_on_every_path() -> None:
    spec = SPEC.replace("storage:", "  subject_field: who\nstorage:").replace(
        "    - {name: emb", "    - {name: who, type: string, required: false}\n    - {name: emb")

    async def main() -> list[PredictionRecord]:
        def resolve(name: str, ref: str | None) -> ModelTarget:
            return ModelTarget(name, 1, "python", "x:y")

        sink = Sink()
        gw = Gateway(parse_spec(spec, env={}), resolve, lambda _t: Runtime(), sink)
        await gw.start()
        await gw.predict("m", None, [{"age": 1.0, "who": "s" * 10_000}])
        with pytest.raises(ContractViolation):
            await gw.predict("m", None, [{"age": -1.0, "who": "s" * 10_000}])
        await gw.close()
        return sink.records

    records = asyncio.run(main())
    assert [r.status for r in records] == ["ok", "rejected"]
    assert all(r.subject_id is not None and len(r.subject_id) == 256 for r in records)
