"""Per-subject payload keys: sealing round trip, wrong keys and tampering refused, erased keys
read as erased (never an error), the key's bytes gone from the key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.subject_keys import (
    ERASED,
    PREFIX,
    SubjectKeys,
    key_file,
    key_id,
    keys_for,
    open_payloads,
    seal,
    sealed_key_id,
    unseal,
)
from pg import table_file_bytes

SECRET = b"s" * 32


def _row(subject: str | None, n: int) -> dict[str, Any]:
    return {"id": f"p{n}", "subject_id": subject, "inputs": f'{{"email":"canary{n}@x.org"}}',
            "outputs": str(n), "request_meta": '{"route":"/v1"}'}


def test_seal_round_trip_and_what_fails() -> None:
    key, other = os.urandom(32), os.urandom(32)
    kid = key_id(SECRET, "alice")
    sealed = seal(key, kid, "inputs", '{"email":"alice@x.org"}')
    assert sealed.startswith(PREFIX) and sealed_key_id(sealed) == kid
    assert "alice" not in sealed
    assert unseal(key, "inputs", sealed) == '{"email":"alice@x.org"}'
    assert seal(key, kid, "inputs", "1") != seal(key, kid, "inputs", "1")  # fresh nonces
    with pytest.raises(ValueError, match="does not open"):
        unseal(other, "inputs", sealed)
    with pytest.raises(ValueError, match="does not open"):  # moved to another column
        unseal(key, "outputs", sealed)
    body = bytearray(sealed.encode())
    body[-5] = ord("A") if body[-5] != ord("A") else ord("B")
    with pytest.raises(ValueError, match="does not open"):
        unseal(key, "inputs", body.decode())
    with pytest.raises(ValueError, match="not a sealed"):
        unseal(key, "inputs", '{"a":1}')


def test_key_ids_are_keyed_digests_not_subjects() -> None:
    assert key_id(SECRET, "alice") == key_id(SECRET, "alice")
    assert key_id(SECRET, "alice") != key_id(b"t" * 32, "alice")
    assert len(key_id(SECRET, "alice")) == 32 and "alice" not in key_id(SECRET, "alice")


def test_seal_rows_then_open_and_forget(tmp_path: Path) -> None:
    keys = SubjectKeys(tmp_path / "subject_keys.db", SECRET)
    rows = [_row("alice", 1), _row("bob", 2), _row(None, 3), _row("alice", 4)]
    plain = [dict(r) for r in rows]
    assert keys.seal_rows(rows) == 3
    assert rows[2] == plain[2]  # no subject: stored as it is
    for r in (rows[0], rows[1], rows[3]):
        assert all(sealed_key_id(r[c]) for c in ("inputs", "outputs", "request_meta"))
        assert "canary" not in r["inputs"]
    assert keys.seal_rows(rows) == 0  # sealed already: left alone
    assert stat.S_IMODE((tmp_path / "subject_keys.db").stat().st_mode) == 0o600

    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    assert key_file(engine) == tmp_path / "subject_keys.db"
    opened = open_payloads(engine, [dict(r) for r in rows])
    assert opened == plain

    alice_key = keys.keys([key_id(SECRET, "alice")])[key_id(SECRET, "alice")]
    assert keys.forget(key_id(SECRET, "alice")) is True
    assert keys.forget(key_id(SECRET, "alice")) is False
    assert alice_key not in (tmp_path / "subject_keys.db").read_bytes()
    wal = tmp_path / "subject_keys.db-wal"
    assert not wal.exists() or alice_key not in wal.read_bytes()
    after = open_payloads(engine, [dict(r) for r in rows])
    assert after[1] == plain[1] and after[2] == plain[2]
    for r in (after[0], after[3]):
        assert {c: r[c] for c in ERASED} == ERASED
    # A new sighting of an erased subject gets a new key, not the old one back.
    again = [_row("alice", 5)]
    keys.seal_rows(again)
    assert keys.keys([key_id(SECRET, "alice")])[key_id(SECRET, "alice")] != alice_key
    assert open_payloads(engine, [dict(r) for r in rows])[0]["inputs"] == "null"
    keys.close()
    engine.dispose()


def test_without_a_key_file_sealed_payloads_read_as_erased(tmp_path: Path) -> None:
    keys = SubjectKeys(tmp_path / "elsewhere" / "subject_keys.db", SECRET)
    rows = [_row("alice", 1)]
    keys.seal_rows(rows)
    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    assert keys_for(engine) is None  # nothing beside this store
    assert open_payloads(engine, [dict(rows[0])])[0]["outputs"] == ERASED["outputs"]
    assert SubjectKeys(tmp_path / "none.db").keys(["x"]) == {}  # reading creates nothing
    assert not (tmp_path / "none.db").exists()
    keys.close()
    engine.dispose()


def test_sealing_needs_the_project_secret(tmp_path: Path) -> None:
    from keelwork.errors import StoreError

    with pytest.raises(StoreError, match="subject key"):
        SubjectKeys(tmp_path / "k.db").seal_rows([_row("alice", 1)])


def test_the_log_seals_in_its_writer_and_a_key_file_failure_spools(tmp_path: Path) -> None:
    from keelwork.adapters.stores.prediction_log import PredictionLog
    from keelwork.core.predictions import PredictionRecord
    from keelwork.errors import StoreError

    keys = SubjectKeys(tmp_path / "subject_keys.db", SECRET)
    failures = [StoreError("key file unavailable")]

    def flaky_seal(rows: list[dict[str, Any]]) -> object:
        if failures:
            raise failures.pop()
        return keys.seal_rows(rows)

    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    log = PredictionLog(engine, tmp_path / "spool", seal=flaky_seal,
                        retry_backoff=(0.01, 0.01))
    log.start()
    recs = [PredictionRecord(id=f"p{i}", ts=float(i), model="m", version=1,
                             subject_id="alice" if i % 2 else None,
                             inputs={"note": f"canary{i}qz"}, outputs=i, latency_ms=1.0)
            for i in range(6)]
    log.write_blocking(recs[:3])  # the seal fails: spooled, not lost
    assert log.stats()["spooled_total"] == 3
    log.write_blocking(recs[3:])
    assert log.flush(10)
    log.close()
    with engine.connect() as conn:
        stored = dict(conn.exec_driver_sql("SELECT id, inputs FROM prediction_payloads").all())
    assert len(stored) == 6
    for i in range(6):
        assert (sealed_key_id(stored[f"p{i}"]) is not None) == bool(i % 2)
    assert [r.inputs for r in log.iter_records()] == [{"note": f"canary{i}qz"} for i in range(6)]
    from keelwork.adapters.stores.explanation_store import read_prediction

    got = read_prediction(engine, "p1")  # the explain route's read
    assert got is not None and got.inputs == {"note": "canary1qz"}
    keys.close()
    engine.dispose()


@pytest.mark.postgres
def test_a_postgresql_key_store_makes_and_destroys_keys(pg_database: str) -> None:
    keys = SubjectKeys(pg_database, SECRET)
    assert keys.path is None and keys.keys(["x"]) == {}  # reading creates no table
    rows = [_row("alice", 1), _row("bob", 2)]
    assert keys.seal_rows(rows) == 2
    alice, bob = key_id(SECRET, "alice"), key_id(SECRET, "bob")
    held = keys.keys([alice, bob])
    assert set(held) == {alice, bob}
    assert unseal(held[alice], "inputs", rows[0]["inputs"]) == _row("alice", 1)["inputs"]
    engine = make_engine(pg_database)
    assert held[alice] in table_file_bytes(engine, "subject_keys")  # the scan sees a key when held
    assert keys.forget_many([alice, "0" * 32]) == 1
    raw = table_file_bytes(engine, "subject_keys")
    assert held[alice] not in raw and held[bob] in raw  # rewritten: no dead tuple keeps it
    keys.restore({alice: held[alice]})  # retention puts back a key whose subject came back
    assert keys.keys([alice]) == {alice: held[alice]}
    keys.close()
    engine.dispose()


@pytest.mark.postgres
def test_a_postgresql_log_is_sealed_under_the_project_key_file(pg_database: str,
                                                                tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from keelwork.adapters.stores.prediction_log import PredictionLog
    from keelwork.adapters.stores.prediction_store import PredictionReader
    from keelwork.core.predictions import PredictionRecord
    from keelwork.service.payload_keys import project_keys

    engine = make_engine(pg_database)
    keys = project_keys(tmp_path, engine, seal=True)
    assert keys is not None and keys.path == tmp_path.absolute() / ".keel" / "subject_keys.db"
    log = PredictionLog(engine, tmp_path / "spool", seal=keys.seal_rows)
    log.start()
    log.write_blocking([PredictionRecord(
        id=f"p{i}", ts=float(i), model="m", version=1, subject_id="alice" if i % 2 else None,
        inputs={"note": f"canary{i}qz"}, outputs=i, latency_ms=1.0) for i in range(4)])
    log.close()
    raw = table_file_bytes(engine, "prediction_payloads")
    assert b"canary0qz" in raw and b"canary1qz" not in raw and b"canary3qz" not in raw
    assert not inspect(engine).has_table("subject_keys")  # no key in the data store
    # Another engine on the same database (another reader) opens them with the attached keys.
    other = make_engine(pg_database)
    assert [r.inputs["note"] for r in PredictionReader(other).iter_records()] == [
        f"canary{i}qz" for i in range(4)]
    assert keys.forget(key_id(keys.secret or b"", "alice"))
    assert [r.inputs for r in PredictionReader(other).iter_records()] == [
        {"note": "canary0qz"}, None, {"note": "canary2qz"}, None]
    other.dispose()
    engine.dispose()


def test_inserted_records_are_sealed_when_a_sealing_key_store_is_attached(
        tmp_path: Path) -> None:
    from keelwork.adapters.stores.prediction_store import (
        PredictionReader,
        ensure_schema,
        insert_records,
    )
    from keelwork.core.predictions import PredictionRecord
    from keelwork.service.payload_keys import project_keys

    def recs(first: int) -> list[PredictionRecord]:
        return [PredictionRecord(id=f"p{i}", ts=float(i), model="m", version=1,
                                 subject_id="bob" if i % 2 else None,
                                 inputs={"note": f"canary{i}qz"}, outputs=i, latency_ms=1.0)
                for i in range(first, first + 2)]

    engine = make_engine(f"sqlite:///{tmp_path / 'store' / 'keel.db'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # no key store attached: as before, in clear
        insert_records(conn, recs(0))
    project_keys(tmp_path, engine, seal=True)
    with engine.begin() as conn:
        insert_records(conn, recs(2))
    with engine.connect() as conn:
        stored = dict(conn.exec_driver_sql("SELECT id, inputs FROM prediction_payloads").all())
    assert sealed_key_id(stored["p1"]) is None and sealed_key_id(stored["p3"]) is not None
    assert sealed_key_id(stored["p2"]) is None  # no subject: not sealed
    assert (tmp_path / "store" / "subject_keys.db").exists()  # beside the SQLite store
    assert [r.inputs["note"] for r in PredictionReader(engine).iter_records()] == [
        f"canary{i}qz" for i in range(4)]
    engine.dispose()


def _seal_again_after_a_destruction_elsewhere(writer: SubjectKeys, destroy: Any) -> None:
    first = [_row("s", 1)]
    writer.seal_rows(first)  # the writer now holds the key of s in its seal cache
    destroy()
    fresh = [_row("s", 2)]
    writer.seal_rows(fresh)
    kid = sealed_key_id(fresh[0]["inputs"])
    assert kid == sealed_key_id(first[0]["inputs"])
    reader = SubjectKeys(writer.url)
    left = reader.keys([kid])
    reader.close()
    # Sealed under a new key, not the destroyed one the cache held: the new payload opens,
    # the erased one does not.
    assert unseal(left[kid], "inputs", fresh[0]["inputs"]) == '{"email":"canary2@x.org"}'
    with pytest.raises(ValueError):
        unseal(left[kid], "inputs", first[0]["inputs"])


def test_a_key_destroyed_by_another_process_seals_nothing_after(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "subject_keys.db"
    code = ("import sys; from pathlib import Path; "
            "from keelwork.adapters.stores.subject_keys import SubjectKeys; "
            "assert SubjectKeys(Path(sys.argv[1])).forget(sys.argv[2])")
    _seal_again_after_a_destruction_elsewhere(SubjectKeys(path, SECRET), lambda: subprocess.run(
        [sys.executable, "-c", code, str(path), key_id(SECRET, "s")], check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}))


def test_a_key_destroyed_through_another_engine_on_postgresql(pg_database: str) -> None:
    writer, other = SubjectKeys(pg_database, SECRET), SubjectKeys(pg_database)
    try:
        _seal_again_after_a_destruction_elsewhere(
            writer, lambda: other.forget(key_id(SECRET, "s")))
        assert writer.generation() == other.generation() == 1
    finally:
        writer.close()
        other.close()


def test_rows_spooled_while_the_key_store_is_down_hold_no_clear_payload(tmp_path: Path) -> None:
    from keelwork.adapters.stores.prediction_log import PredictionLog
    from keelwork.core.predictions import PredictionRecord
    from keelwork.errors import StoreError

    keys = SubjectKeys(tmp_path / "subject_keys.db", SECRET)
    down = [True]

    def seal(rows: list[dict[str, Any]]) -> object:
        if down[0]:
            raise StoreError("key store unreachable")
        return keys.seal_rows(rows)

    engine = make_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, seal=seal, retry_backoff=(30.0, 30.0))
    log.start()
    log.write_blocking([PredictionRecord(
        id=f"p{i}", ts=float(i), model="m", version=1, subject_id="alice" if i % 2 else None,
        inputs={"note": f"cnryspl{i}qz"}, outputs=i, latency_ms=1.0) for i in range(4)])
    assert log.stats()["spooled_total"] == 4
    raw = b"".join(p.read_bytes() for p in spool.rglob("*") if p.is_file())
    assert b"cnryspl1qz" not in raw and b"cnryspl3qz" not in raw  # alice's: sealed
    assert b"cnryspl0qz" in raw  # no subject: as the store would hold it
    assert len(list(spool.rglob("spool-*.key"))) == 1
    down[0] = False
    assert log.flush(10)  # replayed: sealed under alice's key, the segment key destroyed
    log.close()
    assert not list(spool.rglob("spool-*.key"))
    with engine.connect() as conn:
        stored = dict(conn.exec_driver_sql("SELECT id, inputs FROM prediction_payloads").all())
    assert [sealed_key_id(stored[f"p{i}"]) is not None for i in range(4)] == [
        False, True, False, True]
    assert [r.inputs for r in log.iter_records()] == [{"note": f"cnryspl{i}qz"}
                                                     for i in range(4)]
    keys.close()
    engine.dispose()
