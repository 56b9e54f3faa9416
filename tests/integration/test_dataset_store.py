"""Dataset snapshots on both metadata backends (SQLite file, real PostgreSQL on loopback).

Each test takes ``store_url`` and runs twice. Inputs are real CSV / Parquet files written here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from keelwork.adapters.stores import datasets as store_module
from keelwork.adapters.stores.datasets import DatasetStore, dataset_versions, open_dataset_store
from keelwork.adapters.stores.schema import schema_meta
from keelwork.core.datasets import canonicalize, content_sha256
from keelwork.errors import DataFileError, RegistryError, StoreError
from keelwork.service.datasets import snapshot_file


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture
def store(project: Path, store_url: str) -> Iterator[DatasetStore]:
    # The store is handed who acts (the caller's `user` setting); it reads no environment.
    with open_dataset_store(project, store_url, user="ana@example.com") as opened:
        yield opened


def customers(n: int = 2_000, seed: int = 0, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "customer_id": [f"cust-{i % 300}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "spend": (rng.normal(100 + shift, 15, n)).round(3),
        "plan": rng.choice(["basic", "pro"], n),
    })


def write_parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def write_csv(path: Path, table: pa.Table) -> Path:
    pcsv.write_csv(table, path)
    return path


def rows(store: DatasetStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(dataset_versions)).scalar_one())


def snapshot_dirs(store: DatasetStore) -> list[Path]:
    return sorted(p for p in store.root.glob("*/*") if p.parent.name != "tmp")


def leftovers(store: DatasetStore) -> list[Path]:
    tmp = store.root / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


# --------------------------------------------------------------------------- snapshot
def test_snapshot_stores_rows_schema_profile_and_provenance(store: DatasetStore,
                                                           tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "customers.parquet", customers())
    dv = snapshot_file(store, source, "churn")
    assert (dv.ref, dv.rows, dv.created_by) == ("churn:1", 2_000, "ana@example.com")
    assert dv.source == str(source.absolute())
    assert dv.schema == (("customer_id", "large_string"), ("age", "int64"), ("spend", "double"),
                         ("plan", "large_string"))
    assert dv.sha256 == content_sha256(canonicalize(customers()))
    assert {c.name: c.kind for c in dv.profile.columns} == {
        "customer_id": "text", "age": "numeric", "spend": "numeric",  # 300 distinct ids
        "plan": "categorical"}
    stored = store.read(dv)
    assert stored.num_rows == 2_000 and content_sha256(canonicalize(stored)) == dv.sha256
    assert store.verify("churn:1") == dv
    assert store.get("churn", 1) == dv == store.resolve("churn")
    files = list(store.path_of(dv).glob("part-*.parquet"))
    assert dv.size == sum(f.stat().st_size for f in files) > 0
    assert not leftovers(store)
    with store.engine.connect() as conn:
        stamped = conn.execute(select(schema_meta.c.version)
                               .where(schema_meta.c.kind == "datasets")).scalar_one()
    assert stamped == store_module.DATASETS_SCHEMA_VERSION


def test_same_content_is_stored_once_and_versions_only_when_it_changes(
        store: DatasetStore, tmp_path: Path) -> None:
    first = snapshot_file(store, write_parquet(tmp_path / "a.parquet", customers()), "churn")
    shuffled = customers().take(np.random.default_rng(3).permutation(2_000))
    again = snapshot_file(store, write_csv(tmp_path / "a.csv", shuffled), "churn")
    assert again == first  # same rows from another format and order: the latest version
    assert rows(store) == 1
    second = snapshot_file(store, write_parquet(tmp_path / "b.parquet", customers(seed=1)), "churn")
    back = snapshot_file(store, tmp_path / "a.parquet", "churn")
    assert (second.version, back.version) == (2, 3)  # content went back: a new version
    assert back.sha256 == first.sha256 and back.uri == first.uri
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in customers().to_pylist()),
                     encoding="utf-8")
    assert snapshot_file(store, jsonl, "churn") == back  # JSON lines: the same rows again
    other = snapshot_file(store, tmp_path / "a.csv", "churn-copy")
    assert other.ref == "churn-copy:1" and other.uri == first.uri
    assert len(snapshot_dirs(store)) == 2  # two contents, five versions
    assert [v.ref for v in store.list_versions()] == [
        "churn:1", "churn:2", "churn:3", "churn-copy:1"]
    assert [v.version for v in store.list_versions("churn")] == [1, 2, 3]
    assert store.latest("churn") == back and store.latest("nope") is None


def test_subject_layout_keeps_each_subject_in_one_part(store: DatasetStore,
                                                       tmp_path: Path) -> None:
    store.part_rows, store.row_group_rows = 400, 128
    source = write_csv(tmp_path / "c.csv", customers())
    dv = snapshot_file(store, source, "churn", subject_column="customer_id")
    plain = snapshot_file(store, source, "churn-plain")
    assert dv.sha256 == plain.sha256 and dv.uri != plain.uri  # one content, two layouts
    assert dv.subject_column == "customer_id"
    subject = dv.profile.column("customer_id")
    assert subject is not None and subject.kind == "redacted"  # ids identify people
    assert subject.categories is not None and subject.categories.top == ()
    assert subject.categories.distinct == 300
    manifest = store.manifest(dv)
    assert manifest["subject_column"] == "customer_id" and manifest["rows"] == 2_000
    parts = manifest["parts"]
    assert len(parts) >= 3 and sum(p["rows"] for p in parts) == 2_000
    for left, right in pairwise(parts):
        assert left["bucket_max"] < right["bucket_min"]  # no bucket spans two parts
    owners: dict[str, set[str]] = {}
    for part in parts:
        ids = pq.read_table(store.path_of(dv) / part["file"])["customer_id"].to_pylist()
        for key in ids:
            owners.setdefault(key, set()).add(part["file"])
    assert len(owners) == 300 and all(len(files) == 1 for files in owners.values())
    for key in ("cust-7", "cust-299"):
        located = store.locate_subject(dv, key)
        assert len(located) == 1
        file, groups = located[0]
        assert {file.name} == owners[key] and groups
        found = pq.ParquetFile(file).read_row_groups(groups)["customer_id"]
        assert pc.sum(pc.equal(found, key)).as_py() == 2_000 // 300 + (int(key[5:]) < 2_000 % 300)
    with pytest.raises(RegistryError, match="no subject column"):
        store.locate_subject(plain, "cust-7")
    assert store.verify(dv) == dv


def test_json_lines_with_mixed_values_round_trip(store: DatasetStore, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    lines = [{"id": 1, "value": 3}, {"id": 2, "value": "three"}, {"id": 3, "value": [3]},
             {"id": 4}]
    source.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    dv = snapshot_file(store, source, "events")
    assert dv.schema == (("id", "int64"), ("value", "large_string"))
    assert store.read(dv)["value"].to_pylist() == ["3", '"three"', "[3]", None]
    assert store.verify(dv) == dv


def test_verify_detects_altered_parts(store: DatasetStore, tmp_path: Path) -> None:
    dv = snapshot_file(store, write_parquet(tmp_path / "a.parquet", customers()), "churn")
    part = next(store.path_of(dv).glob("part-*.parquet"))
    part.chmod(0o644)
    pq.write_table(customers(seed=5), part)
    with pytest.raises(RegistryError, match="missing or altered"):
        store.verify(dv)


# --------------------------------------------------------------------------- refusals
def test_bad_input_writes_nothing(store: DatasetStore, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", customers())
    with pytest.raises(DataFileError) as info:
        snapshot_file(store, source, "churn", subject_column="customer")
    assert info.value.column == "customer" and "customer_id" in info.value.message
    with pytest.raises(DataFileError, match="identifiers"):
        snapshot_file(store, source, "churn", subject_column="spend")
    header_only = tmp_path / "empty.csv"
    header_only.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="no rows"):
        snapshot_file(store, header_only, "churn")
    with pytest.raises(DataFileError):
        snapshot_file(store, tmp_path / "missing.csv", "churn")
    with pytest.raises(RegistryError, match="dataset name"):
        snapshot_file(store, source, "bad name")
    assert rows(store) == 0 and not snapshot_dirs(store) and not leftovers(store)


def test_a_failed_insert_removes_the_files_it_wrote(store: DatasetStore, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kept = snapshot_file(store, write_parquet(tmp_path / "a.parquet", customers()), "keep")

    def broken(*_args: object) -> int:
        raise StoreError("the database went away")

    monkeypatch.setattr(DatasetStore, "_insert", broken)
    with pytest.raises(StoreError, match="went away"):
        snapshot_file(store, write_parquet(tmp_path / "b.parquet", customers(seed=2)), "churn")
    with pytest.raises(StoreError):  # files of content another version references stay
        snapshot_file(store, tmp_path / "a.parquet", "churn")
    assert snapshot_dirs(store) == [store.root / kept.uri] and not leftovers(store)
    assert store.verify(kept) == kept


def test_lookups_name_what_exists(store: DatasetStore, tmp_path: Path) -> None:
    snapshot_file(store, write_parquet(tmp_path / "a.parquet", customers()), "churn")
    assert store.exists("churn") and store.exists("churn:1")
    assert not store.exists("churn:2") and not store.exists("other") and not store.exists("a b")
    with pytest.raises(RegistryError, match=r"no version 4 \(versions 1\.\.1\)"):
        store.resolve("churn:4")
    with pytest.raises(RegistryError, match="Did you mean 'churn'") as info:
        store.resolve("chrun")
    assert "keel data list" in info.value.message
    with pytest.raises(RegistryError, match="NAME:VERSION"):
        store.resolve("churn:x")


def test_concurrent_snapshots_of_one_content_make_one_version(store: DatasetStore,
                                                              tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "a.parquet", customers(500))
    others = [write_parquet(tmp_path / f"o{i}.parquet", customers(500, seed=10 + i))
              for i in range(3)]
    errors: list[BaseException] = []

    def take(path: Path) -> None:
        try:
            snapshot_file(store, path, "churn")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(p,)) for p in [source] * 4 + others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    versions = store.list_versions("churn")
    assert sorted(v.version for v in versions) == list(range(1, len(versions) + 1))
    assert 4 <= len(versions) <= 7  # three other contents; the first one at least once
    assert len({v.sha256 for v in versions}) == 4
    assert all(store.verify(v) == v for v in versions)
