"""The content-addressed artifact store: streaming hashes, directory hashing, dedup, atomicity."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import tracemalloc
from pathlib import Path

import pytest

from keelwork.adapters.stores import artifacts as artifacts_module
from keelwork.adapters.stores.artifacts import ArtifactStore, hash_file, hash_path, hash_tree
from keelwork.errors import ArtifactError


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _model_dir(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        _write(root / rel, data)
    return root


FILES = {"config.json": b'{"a": 1}', "weights/part-0.bin": b"\x00" * 100,
         "weights/part-1.bin": b"\x01" * 50, "tokenizer/vocab.txt": b"hello\nworld\n"}


# --------------------------------------------------------------------------- hashing
def test_hash_file_matches_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several chunks plus a partial one
    path = _write(tmp_path / "m.bin", data)
    assert hash_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


def test_hash_file_streams_instead_of_reading_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as fh:
        for _ in range(32):
            fh.write(os.urandom(1 << 20))  # 32 MiB
    tracemalloc.start()
    try:
        hash_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20), f"hashing a 32 MiB file peaked at {peak / 2**20:.1f} MiB"


def test_directory_hash_is_independent_of_creation_order(tmp_path: Path) -> None:
    a = _model_dir(tmp_path / "a", FILES)
    b = _model_dir(tmp_path / "b", dict(reversed(list(FILES.items()))))
    os.utime(b / "config.json", (0, 0))  # timestamps do not count
    (b / "config.json").chmod(0o600)  # nor do permissions
    assert hash_tree(a) == hash_tree(b)
    assert hash_tree(a)[1] == sum(len(v) for v in FILES.values())


@pytest.mark.parametrize("change", ["content", "rename", "move", "empty_dir", "extra_file"])
def test_directory_hash_changes_with_any_path_or_content(tmp_path: Path, change: str) -> None:
    base = hash_tree(_model_dir(tmp_path / "a", FILES))
    b = _model_dir(tmp_path / "b", FILES)
    if change == "content":
        (b / "weights/part-0.bin").write_bytes(b"\x00" * 99 + b"\x02")
    elif change == "rename":
        (b / "config.json").rename(b / "config2.json")
    elif change == "move":
        (b / "tokenizer/vocab.txt").rename(b / "vocab.txt")
    elif change == "empty_dir":
        (b / "cache").mkdir()
    else:
        _write(b / "README", b"")
    assert hash_tree(b)[0] != base[0]


def test_file_and_directory_hashes_are_separate_domains(tmp_path: Path) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    empty_file = _write(tmp_path / "empty.bin", b"")
    assert hash_path(empty_dir)[0] != hash_path(empty_file)[0]


def test_directory_hash_follows_symlinks(tmp_path: Path) -> None:
    real = _model_dir(tmp_path / "real", FILES)
    linked = tmp_path / "linked"
    linked.mkdir()
    blobs = _model_dir(tmp_path / "blobs", {k.replace("/", "_"): v for k, v in FILES.items()})
    for rel in FILES:
        (linked / rel).parent.mkdir(parents=True, exist_ok=True)
        (linked / rel).symlink_to(blobs / rel.replace("/", "_"))
    assert hash_tree(linked) == hash_tree(real)


def test_broken_link_and_link_loop_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.bin").symlink_to(tmp_path / "gone")
    with pytest.raises(ArtifactError, match=r"broken symbolic link 'model\.bin'"):
        hash_tree(broken)
    loop = tmp_path / "loop"
    (loop / "sub").mkdir(parents=True)
    (loop / "sub" / "back").symlink_to(loop)
    with pytest.raises(ArtifactError, match="symbolic link loop at 'sub/back'"):
        hash_tree(loop)


def test_hash_path_of_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        hash_path(tmp_path / "nope.onnx")


# --------------------------------------------------------------------------- the store
def test_put_file_stores_it_under_its_hash_with_its_name(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    src = _write(tmp_path / "model.skops", b"model-bytes")
    sha, size, uri, created = store.put(src)
    assert (sha, size, created) == (hashlib.sha256(b"model-bytes").hexdigest(), 11, True)
    assert uri == f"sha256/{sha[:2]}/{sha}/model.skops"
    stored = store.path_of(sha)
    assert stored == store.root / uri
    assert stored.read_bytes() == b"model-bytes"
    assert store.resolve_uri(uri) == stored
    assert store.verify(sha) == stored
    assert store.exists(sha)


def test_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    first = store.put(_write(tmp_path / "a" / "model.onnx", b"same"))
    second = store.put(_write(tmp_path / "b" / "renamed.onnx", b"same"))
    assert second.created is False
    assert (second.sha256, second.uri) == (first.sha256, first.uri)
    blobs = list((store.root / "sha256").rglob("*.onnx"))
    assert len(blobs) == 1


def test_put_directory_stores_a_directory(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    src = _model_dir(tmp_path / "hf-model", FILES)
    put = store.put(src)
    stored = store.path_of(put.sha256)
    assert stored.is_dir() and stored.name == "hf-model"
    assert {p.relative_to(stored).as_posix(): p.read_bytes()
            for p in stored.rglob("*") if p.is_file()} == FILES
    assert put.sha256 == hash_tree(src)[0] == hash_tree(stored)[0]
    assert store.put(_model_dir(tmp_path / "copy", FILES)).created is False


def test_put_keeps_the_link_name_not_the_target_name(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    target = _write(tmp_path / "blobs" / "3f2a9c", b"onnx")
    link = tmp_path / "model.onnx"
    link.symlink_to(target)
    assert store.put(link).uri.endswith("/model.onnx")
    assert not store.path_of(store.put(link).sha256).is_symlink()


def test_put_missing_source_is_an_artifact_error(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(ArtifactError, match=r"'.*missing\.pt' does not exist"):
        store.put(tmp_path / "missing.pt")


def test_a_source_that_changes_while_copied_is_refused_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactStore(tmp_path / "store")
    src = _write(tmp_path / "model.pt", b"before")
    real_copy = shutil.copyfile

    def copy_while_training_rewrites_it(a: Path, b: Path) -> object:
        Path(a).write_bytes(b"after!")  # another process rewrites the file meanwhile
        return real_copy(a, b)

    monkeypatch.setattr(artifacts_module.shutil, "copyfile", copy_while_training_rewrites_it)
    with pytest.raises(ArtifactError, match="changed while it was being stored"):
        store.put(src)
    assert not (store.root / "sha256").exists() or not any((store.root / "sha256").rglob("*"))
    assert not any((store.root / "tmp").iterdir())


def test_concurrent_puts_of_the_same_bytes_create_one_blob(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    data = os.urandom(1 << 20)
    sources = [_write(tmp_path / f"src{i}" / "model.bin", data) for i in range(8)]
    results: list[bool] = []
    barrier = threading.Barrier(len(sources))

    def put(src: Path) -> None:
        barrier.wait()
        results.append(store.put(src).created)

    threads = [threading.Thread(target=put, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(results) == 8
    assert len(list((store.root / "sha256").rglob("model.bin"))) == 1
    assert not any((store.root / "tmp").iterdir())


def test_verify_detects_a_corrupted_blob(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    put = store.put(_write(tmp_path / "model.skops", b"good"))
    store.path_of(put.sha256).write_bytes(b"evil")
    with pytest.raises(ArtifactError, match=rf"corrupt: .* hashes to \w+, not {put.sha256}"):
        store.verify(put.sha256)


def test_path_of_unknown_or_malformed_hash(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(ArtifactError, match="No stored artifact has the hash"):
        store.path_of("0" * 64)
    with pytest.raises(ArtifactError, match=r"64 lowercase hex digits; got '\.\./etc'"):
        store.path_of("../etc")
    with pytest.raises(ArtifactError, match="not a stored-blob URI"):
        store.resolve_uri("python:mod:fn")


def test_remove_if_unreferenced_asks_the_caller(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    sha = store.put(_write(tmp_path / "m.bin", b"x")).sha256
    asked: list[str] = []

    def referenced(h: str) -> bool:
        asked.append(h)
        return True

    assert store.remove_if_unreferenced(sha, referenced) is False
    assert store.exists(sha) and asked == [sha]
    assert store.remove_if_unreferenced(sha, lambda _h: False) is True
    assert not store.exists(sha)
    assert store.remove(sha) is False
