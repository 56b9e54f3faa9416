"""PredictionRecord (dict round trip for the spool) and the time-ordered prediction ids."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keelwork.core.predictions import (
    RECORD_FORMAT_VERSION,
    PredictionRecord,
    new_prediction_id,
    prediction_id_time,
)
from keelwork.errors import StoreError


def _record(**overrides: object) -> PredictionRecord:
    fields: dict[str, object] = dict(
        id=new_prediction_id(), ts=1_700_000_000.25, model="churn", version=3, tenant="acme",
        subject_id="customer-17", inputs={"age": 41, "plan": "pro"}, outputs={"label": 1},
        latency_ms=4.5, model_latency_ms=1.25, status="fallback", guard="timeout",
        answered_by="churn-baseline@2", request_meta={"client": "web", "trace": "abc"},
    )
    fields.update(overrides)
    return PredictionRecord(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ids
def test_ids_are_uuid7_strings() -> None:
    pid = new_prediction_id()
    parsed = uuid.UUID(pid)
    assert len(pid) == 36 and pid == str(parsed)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_sort_in_creation_order_and_never_repeat() -> None:
    ids = [new_prediction_id() for _ in range(50_000)]  # many share a millisecond
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_ids_from_many_threads_are_unique() -> None:
    out: list[list[str]] = [[] for _ in range(8)]

    def make(i: int) -> None:
        out[i] = [new_prediction_id() for _ in range(5_000)]

    threads = [threading.Thread(target=make, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [pid for chunk in out for pid in chunk]
    assert len(set(every)) == len(every) == 40_000
    assert all(chunk == sorted(chunk) for chunk in out)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_forked_child_never_reuses_the_parents_random_bytes() -> None:
    new_prediction_id()  # the parent now holds a block of unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: mint ids and hand them back
        try:
            os.write(write, ",".join(new_prediction_id() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        child = f.read().decode().split(",")
    os.waitpid(pid, 0)
    parent = [new_prediction_id() for _ in range(50)]
    # Equal bytes would give equal random tails (the last 62 bits) in both processes.
    assert len(child) == 50
    assert not {c[-12:] for c in child} & {p[-12:] for p in parent}


def test_id_carries_its_creation_time() -> None:
    before = time.time()
    pid = new_prediction_id()
    after = time.time()
    assert before - 0.002 <= prediction_id_time(pid) <= after + 0.002


def test_ids_keep_order_across_milliseconds() -> None:
    first = new_prediction_id()
    time.sleep(0.003)
    second = new_prediction_id()
    assert first < second
    assert prediction_id_time(second) > prediction_id_time(first)


def test_id_generation_is_fast() -> None:
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        new_prediction_id()
    per_id = (time.perf_counter() - started) / n
    assert per_id < 50e-6, f"{per_id * 1e6:.1f} us per id"


@pytest.mark.parametrize("bad", ["", "not-an-id", str(uuid.uuid4()), "z" * 36])
def test_id_time_rejects_other_strings(bad: str) -> None:
    with pytest.raises(StoreError, match="prediction id"):
        prediction_id_time(bad)


# --------------------------------------------------------------------------- records
def test_record_round_trips_through_json() -> None:
    record = _record()
    data = json.loads(json.dumps(record.to_dict()))
    assert data["v"] == RECORD_FORMAT_VERSION
    assert PredictionRecord.from_dict(data) == record


def test_record_defaults() -> None:
    record = PredictionRecord(id="x", ts=1.0, model="m", version=1, inputs=[1], outputs=[2],
                              latency_ms=0.5)
    assert (record.status, record.tenant, record.subject_id, record.guard) == ("ok", None, None,
                                                                               None)
    assert record.request_meta == {}
    minimal = {"id": "x", "ts": 1, "model": "m", "version": 1, "inputs": [1], "outputs": [2],
               "latency_ms": 0.5}
    assert PredictionRecord.from_dict(minimal) == record


def test_record_is_frozen() -> None:
    record = _record()
    with pytest.raises(AttributeError):
        record.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("change", "match"), [
    ({"v": RECORD_FORMAT_VERSION + 1}, "format version"),
    ({"model": 3}, "'model' must be a string"),
    ({"version": "3"}, "'version' must be an integer"),
    ({"version": True}, "'version' must be an integer"),
    ({"ts": "yesterday"}, "wrong type"),
    ({"request_meta": ["a"]}, "must be an object"),
    ({"tenant": 5}, "'tenant' must be a string"),
])
def test_from_dict_rejects_bad_values(change: dict[str, object], match: str) -> None:
    data = {**_record().to_dict(), **change}
    with pytest.raises(StoreError, match=match):
        PredictionRecord.from_dict(data)


def test_from_dict_names_missing_keys() -> None:
    data = _record().to_dict()
    del data["outputs"], data["latency_ms"]
    with pytest.raises(StoreError, match="without outputs, latency_ms"):
        PredictionRecord.from_dict(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@given(inputs=_json, outputs=_json, tenant=st.none() | st.text(max_size=10),
       version=st.integers(0, 2**31 - 1))
def test_any_json_payload_round_trips(inputs: object, outputs: object, tenant: str | None,
                                      version: int) -> None:
    record = _record(inputs=inputs, outputs=outputs, tenant=tenant, version=version)
    assert PredictionRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
