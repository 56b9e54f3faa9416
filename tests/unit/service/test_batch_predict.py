"""Requests predicted a batch at a time, each answered on its own (``keel serve --engine mosec``):
merging and cutting back, the per-request contract check and its logged refusal, one gateway
call and one log record per instance for a whole batch, probabilities apart, and the guards an
engine blind to headers refuses to serve."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from keelwork.core.predictions import PredictionRecord
from keelwork.errors import (
    ContractViolation,
    ErrorDetail,
    InvalidInputError,
    ModelNotFoundError,
    OutputContractViolation,
    SpecError,
)
from keelwork.service.batch_predict import (
    Admitted,
    BatchPredictor,
    BatchQueue,
    Caller,
    check_engine,
    cut,
    engine_problems,
    merge,
    split,
    unbatched,
)
from keelwork.service.gateway.context import PredictResult
from keelwork.service.gateway.gateway import Gateway
from keelwork.service.gateway.host import ModelTarget
from keelwork.spec.loader import parse_spec
from keelwork.spec.model import ResolvedSpec

SPEC = """\
service: {name: t, owners: [t@example.com]}
models:
  - {name: m, runtime: python, artifact: "x:y", batching: {enabled: false}}
contract:
  inputs:
    - {name: a, type: float, min: 0}
    - {name: b, type: integer}
"""


class Signature:
    classes = (0, 1)


class Runtime:
    kind = "fake"
    signature = Signature()

    def __init__(self, calls: list[int]) -> None:
        self.calls = calls

    def predict_proba(self, instances: Sequence[Any]) -> list[list[float]]:
        return [[0.25, 0.75] for _ in instances]

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        self.calls.append(len(instances))
        return [r["a"] + r["b"] for r in instances]

    def unload(self) -> None:
        return None


class Sink:
    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    async def write(self, records: Sequence[PredictionRecord]) -> None:
        self.records.extend(records)


def _predictor(spec: str = SPEC) -> tuple[BatchPredictor, Sink, list[int]]:
    def resolve(name: str, ref: str | None) -> ModelTarget:
        if ref not in (None, "1", "champion"):
            raise ModelNotFoundError(f"no ref {ref!r}")
        return ModelTarget(name, 1, "python", "x:y")

    sink, calls = Sink(), []
    gateway = Gateway(parse_spec(spec, env={}), resolve, lambda _t: Runtime(calls), sink)
    return BatchPredictor(gateway, "m"), sink, calls


def test_merge_and_split_are_inverse() -> None:
    rows, sizes = merge([[1, 2], [3], [4, 5, 6]])
    assert rows == [1, 2, 3, 4, 5, 6] and sizes == [2, 1, 3]
    assert split(rows, sizes) == [[1, 2], [3], [4, 5, 6]]
    assert split([], []) == []
    with pytest.raises(ValueError, match="cannot be cut"):
        split([1, 2, 3], [1, 1])


def test_cut_gives_each_request_its_answers_ids_probabilities_and_warnings() -> None:
    result = PredictResult(
        "m", 3, ["x", "y", "z"], ["i1", "i2", "i3"], "m:3", probabilities=[[.1], [.2], [.3]],
        classes=(1,), output_violations=(ErrorDetail("predictions[2].score", "max", 9),))
    first, second = cut(result, [1, 2])
    assert (first.predictions, first.prediction_ids, first.probabilities) == (
        ["x"], ["i1"], [[.1]])
    assert (second.predictions, second.prediction_ids, second.probabilities) == (
        ["y", "z"], ["i2", "i3"], [[.2], [.3]])
    assert first.warnings == []  # the warning names the second request's second instance
    assert [d.path for d in second.warnings] == ["predictions[1].score"]
    assert (second.model, second.version, second.answered_by) == ("m", 3, "m:3")


def test_a_batch_is_one_gateway_call_and_one_record_per_instance() -> None:
    predictor, sink, calls = _predictor()
    batch = [Admitted([{"a": 1, "b": 2}]), Admitted([{"a": 10, "b": 1}, {"a": 0, "b": 0}]),
             Admitted([{"a": 5, "b": 5}])]
    answers = asyncio.run(predictor.predict(batch))
    assert calls == [4]  # one model call for the four instances of three requests
    assert [a.predictions for a in answers] == [[3], [11, 0], [10]]
    assert [r.id for r in sink.records] == [i for a in answers for i in a.prediction_ids]
    assert {r.status for r in sink.records} == {"ok"}
    assert {r.request_meta["protocol"] for r in sink.records} == {"v1"}


def test_a_request_that_breaks_the_contract_is_refused_alone_and_logged() -> None:
    predictor, sink, calls = _predictor()
    good, bad = [{"a": 1, "b": 2}], [{"a": -1, "b": 2}, {"a": 1, "b": "x"}]
    assert not predictor.breaks_contract(good)
    assert predictor.breaks_contract(bad)
    assert predictor.breaks_contract([])  # no instance at all
    assert sink.records == []  # the check alone leaves nothing behind
    with pytest.raises(ContractViolation) as refused:
        asyncio.run(predictor.refuse(bad))
    assert {d.path for d in refused.value.details} == {"instances[0].a", "instances[1].b"}
    assert calls == []  # the model never ran
    assert [r.status for r in sink.records] == ["rejected", "rejected"]
    assert {r.guard for r in sink.records} == {"contract"}


def test_each_caller_is_recorded_as_the_default_engine_records_it() -> None:
    """The tenant and subject of each request reach its records (erasure by subject finds
    them), requests of one caller share a call, and transport headers and credentials never
    split a batch nor reach the gateway."""
    assert Caller.of({"host": "h", "content-length": "20", "x-api-key": "secret",
                      "authorization": "Bearer s", "x-request-id": "r1"}, "x-tenant-id") == \
        Caller(headers=(("host", "h"),))
    assert Caller.of({"content-length": "20", "x-api-key": "secret"}, "x-tenant-id") is None
    # a reference (x-keel-model-ref, name@ref) and an admin key's right to name any: a caller
    assert Caller.of({}, "x-tenant-id", ref="next") == Caller(ref="next")
    assert Caller.of({}, "x-tenant-id", any_ref=True) == Caller(any_ref=True)
    ann = Caller.of({"x-tenant-id": "acme", "x-subject-id": "ann", "content-length": "9"},
                    "x-tenant-id")
    bob = Caller.of({"x-tenant-id": "acme", "x-subject-id": "bob", "x-keel-user": "u1",
                     "x-region": "eu"}, "x-tenant-id")
    assert ann is not None and bob is not None
    assert (bob.tenant, bob.subject_id, bob.sticky_key) == ("acme", "bob", "u1")
    assert dict(bob.headers)["x-region"] == "eu"  # model flags' header rules see it
    predictor, sink, calls = _predictor()
    batch = [Admitted([{"a": 1, "b": 1}], caller=ann), Admitted([{"a": 2, "b": 2}], caller=bob),
             Admitted([{"a": 3, "b": 3}], caller=ann), Admitted([{"a": 4, "b": 4}])]
    answers = asyncio.run(predictor.predict(batch))
    assert [a.predictions for a in answers] == [[2], [4], [6], [8]]  # in the batch's order
    assert sorted(calls) == [1, 1, 2]  # ann's two requests together
    by_id = {r.id: r for r in sink.records}
    assert [(by_id[a.prediction_ids[0]].tenant, by_id[a.prediction_ids[0]].subject_id)
            for a in answers] == [("acme", "ann"), ("acme", "bob"), ("acme", "ann"),
                                  (None, None)]
    with pytest.raises(ContractViolation):
        asyncio.run(predictor.refuse([{"a": -1, "b": 1}], ann, "v2"))
    refused = sink.records[-1]
    assert (refused.status, refused.subject_id, refused.request_meta["protocol"]) == (
        "rejected", "ann", "v2")


def test_probabilities_are_asked_for_in_a_call_of_their_own() -> None:
    predictor, _, calls = _predictor()
    batch = [Admitted([{"a": 1, "b": 1}], probabilities=True), Admitted([{"a": 2, "b": 2}]),
             Admitted([{"a": 3, "b": 3}], probabilities=True)]
    answers = asyncio.run(predictor.predict(batch))
    assert [a.predictions for a in answers] == [[2], [4], [6]]  # in the batch's order
    assert sorted(calls) == [1, 2]
    assert [a.probabilities for a in answers] == [[[0.25, 0.75]], None, [[0.25, 0.75]]]


def test_engine_refuses_guards_it_cannot_see() -> None:
    keys = parse_spec(SPEC + "guards: {require_api_key: true}\n", env={})
    limit = parse_spec(SPEC + "guards: {rate_limit: {requests_per_second: 5}}\n", env={})
    plain = parse_spec(SPEC, env={})
    assert engine_problems(plain, "mosec") == []
    assert [p.split(":")[0] for p in engine_problems(keys, "mosec")] == [
        "guards.require_api_key"]
    assert [p.split(":")[0] for p in engine_problems(limit, "mosec")] == ["guards.rate_limit"]
    # An engine that checks keys itself (granian's RSGI app) serves them; rate limits, not.
    assert engine_problems(keys, "granian", checks_keys=True) == []
    assert engine_problems(limit, "granian", checks_keys=True) != []
    # a head deadline keel.yaml sets: refused where the front has none (Mosec's)
    head = parse_spec(SPEC + "guards: {header_read_timeout_s: 3}\n", env={})
    assert [p.split(":")[0] for p in engine_problems(head, "mosec")] == [
        "guards.header_read_timeout_s"]
    assert engine_problems(head, "granian", checks_keys=True, connection_guards=True) == []
    # so is a connection bound keel.yaml sets (Mosec's front takes every connection)
    bound = parse_spec(SPEC + "guards: {max_connections: 64}\n", env={})
    assert [p.split(":")[0] for p in engine_problems(bound, "mosec")] == [
        "guards.max_connections"]
    assert engine_problems(bound, "granian", checks_keys=True, connection_guards=True) == []
    resolved = ResolvedSpec(spec=keys, path=Path("keel.yaml"), project_dir=Path("."))
    with pytest.raises(SpecError, match="cannot enforce") as refused:
        check_engine(resolved, "mosec")
    assert refused.value.details[0].path == "guards.require_api_key"
    check_engine(ResolvedSpec(spec=plain, path=Path("keel.yaml"), project_dir=Path(".")),
                 "mosec")


def test_unbatched_turns_the_gateways_own_batching_off_and_nothing_else() -> None:
    spec = parse_spec(SPEC.replace("batching: {enabled: false}",
                                   "batching: {max_batch_size: 8}"), env={})
    resolved = ResolvedSpec(spec=spec, path=Path("keel.yaml"), project_dir=Path("."))
    out = unbatched(resolved)
    assert out.spec.models[0].batching.enabled is False
    assert out.spec.models[0].batching.max_batch_size == 8
    assert resolved.spec.models[0].batching.enabled is True  # the original is untouched
    assert out.spec.contract == spec.contract


def test_a_queue_batches_what_waits_and_sends_a_lone_request_at_once() -> None:
    predictor, sink, calls = _predictor()
    queue = BatchQueue(predictor, max_batch_size=3, max_batches=1)

    async def scenario() -> tuple[list[Any], list[Any]]:
        lone = await queue.submit(Admitted([{"a": 1, "b": 1}]))  # nobody waits: no company
        crowd = await asyncio.gather(*(queue.submit(Admitted([{"a": i, "b": 0}]))
                                       for i in range(5)))
        return [lone], list(crowd)

    lone, crowd = asyncio.run(scenario())
    assert [a.predictions for a in lone] == [[2]]
    assert [a.predictions for a in crowd] == [[0], [1], [2], [3], [4]]
    # The lone request alone; the crowd of five in batches of at most three.
    assert calls == [1, 3, 2]
    assert len(sink.records) == 6


def test_a_queue_keeps_several_batches_in_the_gateway_at_once() -> None:
    predictor, _, calls = _predictor()
    queue = BatchQueue(predictor, max_batch_size=2, max_batches=3)

    async def scenario() -> list[Any]:
        return list(await asyncio.gather(*(queue.submit(Admitted([{"a": i, "b": 0}]))
                                           for i in range(7))))

    answers = asyncio.run(scenario())
    assert [a.predictions for a in answers] == [[i] for i in range(7)]
    assert sorted(calls) == [1, 2, 2, 2]  # batches of at most two, every request answered


def test_a_queue_holds_at_most_eight_batches_in_the_gateway_by_default() -> None:
    """Eight gateway calls at once (measured: 1.05-1.15x the throughput of four at 16
    connections); the ninth request waits in the queue for a drain."""

    class Held:
        def __init__(self) -> None:
            self.in_flight = self.most = 0
            self.gate = asyncio.Event()

        async def predict_each(self, batch: list[Admitted]) -> list[Any]:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            await self.gate.wait()
            self.in_flight -= 1
            return [a.instances for a in batch]

    held = Held()
    queue = BatchQueue(held, max_batch_size=4)  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        waiting = []
        for i in range(12):  # one at a time: each finds the earlier ones in the gateway
            waiting.append(asyncio.ensure_future(queue.submit(Admitted([i]))))
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert held.in_flight == 8 and len(queue._queue) == 4
        held.gate.set()
        return list(await asyncio.gather(*waiting))

    assert asyncio.run(scenario()) == [[i] for i in range(12)]
    assert held.most == 8


def test_a_failed_batch_fails_each_request_of_it_alike() -> None:
    predictor, _, _ = _predictor()
    queue = BatchQueue(predictor, max_batch_size=8)

    async def scenario() -> list[BaseException | Any]:
        return list(await asyncio.gather(
            queue.submit(Admitted([{"a": 1, "b": 1}])),
            queue.submit(Admitted([{"a": 1, "b": "x"}])),  # not admitted: the batch fails
            return_exceptions=True))

    results = asyncio.run(scenario())
    assert all(isinstance(r, ContractViolation) for r in results), results


class Picky(Runtime):
    """Refuses an instance whose ``a`` is 99, as a runtime refuses an input it cannot read;
    answers 1000 for ``a`` 50 (past the strict output contract below)."""

    def predict(self, instances: Sequence[Any]) -> list[Any]:
        self.calls.append(len(instances))
        if any(r["a"] == 99 for r in instances):
            raise InvalidInputError("instance a=99 cannot be read",
                                    [ErrorDetail("instances[0].a", "unreadable", 99)])
        return [1000 if r["a"] == 50 else r["a"] + r["b"] for r in instances]


STRICT = SPEC + """  outputs:
    - {name: y, type: float, max: 100}
  output_policy: strict
"""


@pytest.mark.parametrize("bad", [99, 50], ids=["model_refuses_it", "strict_output_contract"])
def test_one_requests_failure_fails_it_alone_and_its_batch_mates_are_answered(
        bad: int) -> None:
    """granian's queues: a failure one request may have caused is asked again one request
    at a time (the default engine's batcher isolates it so); the failed call is neither
    logged nor counted, so each request has exactly one record."""
    def resolve(name: str, ref: str | None) -> ModelTarget:
        return ModelTarget(name, 1, "python", "x:y")

    sink, calls = Sink(), []
    gateway = Gateway(parse_spec(STRICT, env={}), resolve, lambda _t: Picky(calls), sink)
    queue = BatchQueue(BatchPredictor(gateway, "m"), max_batch_size=8, max_batches=1)

    async def scenario() -> list[BaseException | Any]:
        first = asyncio.ensure_future(queue.submit(Admitted([{"a": 0, "b": 0}])))
        await asyncio.sleep(0)  # the lone first request goes at once; the three wait
        return list(await asyncio.gather(first, *(
            queue.submit(Admitted([{"a": a, "b": 1}])) for a in (1, bad, 2)),
            return_exceptions=True))

    lone, one, failed, two = asyncio.run(scenario())
    assert [lone.predictions, one.predictions, two.predictions] == [[0], [2], [3]]
    assert isinstance(failed, InvalidInputError if bad == 99 else OutputContractViolation)
    assert calls == [1, 3, 1, 1, 1]  # the batch of three, then each of them alone
    assert sorted(r.status for r in sink.records) == sorted(
        ["ok", "ok", "ok", "rejected" if bad == 99 else "error"])
    counted = {s.labels["status"]: s.value for s in gateway.metrics.requests.collect()[0].samples
               if s.name.endswith("_total")}
    assert counted.get("ok") == 3 and sum(counted.values()) == 4, counted


def test_admitted_requests_are_checked_once_and_nothing_else_skips_the_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """admit() checks a request with the gateway's own validator, and its batch is not
    checked again; a batch holding any request that was not admitted so, or one marked with
    another validator, is checked (and refused) by the gateway as before."""
    from keelwork.core.contracts import RecordValidator, compile_contract

    checked: list[int] = []
    real = RecordValidator.validate_batch

    def counting(self: RecordValidator, records: Sequence[Any],
                 prefix: str = "instances", limit: int | None = None) -> list[ErrorDetail]:
        checked.append(len(records))
        return real(self, records, prefix, limit)

    monkeypatch.setattr(RecordValidator, "validate_batch", counting)
    predictor, sink, calls = _predictor()

    async def admitted(instances: list[Any]) -> Admitted:
        return await predictor.admit(instances)

    batch = [asyncio.run(admitted([{"a": 1, "b": 2}])),
             asyncio.run(admitted([{"a": 3, "b": 4}, {"a": 0, "b": 0}]))]
    assert batch[0].checked_by is predictor.gateway.input_validator is not None
    assert checked == [1, 2]  # once per request, as it was admitted
    answers = asyncio.run(predictor.predict(batch))
    assert [a.predictions for a in answers] == [[3], [7, 0]] and calls == [3]
    assert checked == [1, 2]  # the batch was not checked a second time

    with pytest.raises(ContractViolation):  # refused by admit, logged
        asyncio.run(admitted([{"a": -1, "b": 2}]))
    assert sink.records[-1].status == "rejected"

    bad = [{"a": -5, "b": 1}]
    other = compile_contract(predictor.gateway.spec.contract)  # the same rules, not the same
    for unchecked in ([batch[0], Admitted(bad)],  # one request of the batch was not admitted
                      [Admitted(bad, checked_by=other)]):
        checked.clear()
        with pytest.raises(ContractViolation) as refused:
            asyncio.run(predictor.predict(unchecked))
        assert checked, "the gateway must check a batch it has not checked itself"
        assert any(d.path.endswith(".a") for d in refused.value.details)
    assert calls == [3]  # the model never saw the invalid instances
