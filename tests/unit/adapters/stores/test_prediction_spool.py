"""The prediction spool on its own: segments, fsynced appends, adoption, cut lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from keelwork.adapters.stores import prediction_spool
from keelwork.adapters.stores.prediction_spool import Spool


def _rows(start: int, n: int) -> list[dict[str, Any]]:
    return [{"v": 1, "id": f"id-{i:05d}", "ts": float(i), "model": "m", "version": 1,
             "tenant": None, "subject_id": None, "status": "ok", "guard": None,
             "answered_by": None, "latency_ms": 1.0, "model_latency_ms": None,
             "inputs": "{}", "outputs": "[1]", "request_meta": "{}"}
            for i in range(start, start + n)]


def _replay_all(spool: Spool) -> list[str]:
    spool.rotate()
    out: list[str] = []
    for seg in spool.segments():
        for chunk in spool.read(seg, 7):
            out += [r["id"] for r in chunk]
        spool.remove(seg)
    return out


def test_append_read_remove_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    assert not spool.pending
    spool.append(_rows(0, 10))
    spool.append(_rows(10, 5))
    assert spool.pending and spool.records == 15 and spool.size > 0
    assert _replay_all(spool) == [f"id-{i:05d}" for i in range(15)]
    assert not spool.pending and spool.records == 0 and spool.size == 0
    spool.close()
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_segments_rotate_when_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prediction_spool, "SEGMENT_MAX_BYTES", 2000)
    spool = Spool(tmp_path)
    spool.open()
    for k in range(10):
        spool.append(_rows(k * 5, 5))
    assert len(spool.segments()) > 3
    assert _replay_all(spool) == [f"id-{i:05d}" for i in range(50)]
    spool.close()


def test_a_closed_spool_with_records_is_adopted_in_order(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    first.append(_rows(0, 4))
    first.rotate()
    first.append(_rows(4, 4))
    first.close()  # records left: the directory stays, its lock is released
    second = Spool(tmp_path)
    second.open()
    assert second.records == 8
    second.append(_rows(8, 2))  # after the adopted ones
    assert _replay_all(second) == [f"id-{i:05d}" for i in range(10)]
    second.close()


def test_a_live_spool_is_not_adopted(tmp_path: Path) -> None:
    live = Spool(tmp_path)
    live.open()
    live.append(_rows(0, 3))
    other = Spool(tmp_path)
    other.open()  # the lock of ``live`` is held: hands off
    assert not other.pending
    assert live.records == 3
    other.close()
    live.close()


def test_spool_of_a_killed_process_is_adopted(tmp_path: Path) -> None:
    code = ("import os, sys\nfrom pathlib import Path\n"
            "from keelwork.adapters.stores.prediction_spool import Spool\n"
            f"s = Spool(Path(sys.argv[1])); s.open(); s.append({_rows(0, 6)!r})\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
    spool = Spool(tmp_path)
    spool.open()
    assert spool.records == 6
    assert _replay_all(spool) == [f"id-{i:05d}" for i in range(6)]
    spool.close()


def test_a_cut_or_garbled_line_is_set_aside_not_lost(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    first.append(_rows(0, 3))
    first.rotate()
    (segment,) = first.segments()
    first.close()
    with segment.open("ab") as f:  # as if killed in the middle of a write
        f.write(b'{"id": "id-garbage"}\n{"v":1,"id":"id-cut","ts":1.')
    spool = Spool(tmp_path)
    spool.open()
    assert _replay_all(spool) == ["id-00000", "id-00001", "id-00002"]
    rejected = [orjson.loads(x) for x in (tmp_path / "rejected.jsonl").read_bytes().splitlines()]
    reasons = [r["reason"] for r in rejected]
    assert any("lacks prediction columns" in r for r in reasons)
    assert any("truncated line" in r for r in reasons)
    assert any("id-cut" in r["row"] for r in rejected)
    spool.close()


def test_a_failed_append_leaves_no_half_batch(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append(_rows(0, 2))
    calls = {"n": 0}
    real_fsync = prediction_spool.os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prediction_spool.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        spool.append(_rows(2, 3))
    monkeypatch.setattr(prediction_spool.os, "fsync", real_fsync)
    assert calls["n"] == 1 and spool.records == 2
    spool.append(_rows(5, 1))
    assert _replay_all(spool) == ["id-00000", "id-00001", "id-00005"]
    assert not (tmp_path / "rejected.jsonl").exists()
    spool.close()


def _subject_rows() -> list[dict[str, Any]]:
    rows = _rows(0, 3)
    rows[0].update(subject_id="alice", inputs='{"note":"cnryspool0qz"}',
                   outputs='"cnryspool0out"', request_meta='{"ip":"cnryspool0ip"}')
    rows[1].update(subject_id="bob", inputs="~k1:" + "0" * 32 + ":c2VhbGVk")  # sealed already
    rows[2].update(inputs='{"note":"plainqz"}')  # no subject: stored as the store stores it
    return rows


def _raw(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def test_a_subjects_clear_payload_is_sealed_under_the_segment_key(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    rows = _subject_rows()
    spool.append(rows)
    raw = _raw(tmp_path)
    assert b"cnryspool0" not in raw and b"plainqz" in raw
    assert rows[0]["inputs"] == '{"note":"cnryspool0qz"}'  # the caller's rows are not changed
    keys = list(tmp_path.rglob("spool-*.key"))
    assert len(keys) == 1 and keys[0].stat().st_mode & 0o077 == 0
    spool.rotate()
    (seg,) = spool.segments()
    assert [r["inputs"] for chunk in spool.read(seg, 10) for r in chunk] == [
        rows[0]["inputs"], rows[1]["inputs"], rows[2]["inputs"]]
    back = next(iter(spool.read(seg, 10)))[0]
    assert (back["outputs"], back["request_meta"]) == (rows[0]["outputs"],
                                                       rows[0]["request_meta"])
    spool.remove(seg)  # replayed: the segment's key is destroyed with it
    assert not list(tmp_path.rglob("spool-*.key"))
    spool.close()


def test_a_segment_whose_key_is_gone_reads_as_erased_and_keys_move_on_adoption(
        tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    first.append(_subject_rows())
    first.close()  # a process that left its spool: the next one adopts segment and key
    second = Spool(tmp_path)
    second.open()
    (seg,) = second.segments()
    assert seg.with_suffix(".key").exists()
    assert next(iter(second.read(seg, 10)))[0]["inputs"] == '{"note":"cnryspool0qz"}'
    seg.with_suffix(".key").unlink()
    second._aeads.clear()
    row = next(iter(second.read(seg, 10)))[0]
    assert (row["inputs"], row["outputs"], row["request_meta"]) == (
        "null", "null", '{"payload_erased":true}')
    second.close()
