"""The audit anchor file: forward only, never carried onto a rewritten chain, strict on read."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from keelwork.adapters.stores.audit_anchor import (
    ANCHOR_ENV,
    AnchorFile,
    project_anchors,
)
from keelwork.core.audit import ChainHead
from keelwork.errors import AuditError


def _head(seq: int) -> ChainHead:
    return ChainHead(seq, f"{seq:064x}", seq)


def test_a_head_only_moves_forward(tmp_path: Path) -> None:
    anchor = AnchorFile(tmp_path / "a" / "anchor.json")
    assert anchor.read("db") is None
    assert anchor.advance("db", _head(2), lambda _h: True)
    assert not anchor.advance("db", _head(1), lambda _h: True)
    assert anchor.read("db") == _head(2)
    assert anchor.advance("other", _head(1), lambda _h: True)  # one head per store
    assert anchor.read("db") == _head(2) and anchor.read("other") == _head(1)
    body = json.loads(anchor.path.read_text())
    assert body["kind"] == "keelwork.audit_anchor" and set(body["heads"]) == {"db", "other"}


def test_it_is_not_moved_when_the_recorded_entry_changed(tmp_path: Path) -> None:
    anchor = AnchorFile(tmp_path / "anchor.json")
    anchor.advance("db", _head(5), lambda _h: True)
    asked: list[ChainHead] = []

    def rewritten(recorded: ChainHead) -> bool:
        asked.append(recorded)
        return False

    assert not anchor.advance("db", _head(9), rewritten)
    assert asked == [_head(5)] and anchor.read("db") == _head(5)


def test_concurrent_writers_keep_the_highest_head(tmp_path: Path) -> None:
    anchor = AnchorFile(tmp_path / "anchor.json")
    threads = [threading.Thread(target=lambda s=s: AnchorFile(anchor.path).advance(
        "db", _head(s), lambda _h: True)) for s in range(1, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert anchor.read("db") == _head(39)


def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path) -> None:
    anchor = AnchorFile(tmp_path / "anchor.json")
    anchor.path.write_text("{oops")
    with pytest.raises(AuditError, match=r"anchor\.json cannot be read as JSON"):
        anchor.read("db")
    anchor.path.write_text('{"seq": 1}')
    with pytest.raises(AuditError, match=r"kind 'keelwork\.audit_anchor'"):
        anchor.read("db")


def test_project_anchors_add_the_external_one(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert [a.path for a in project_anchors(tmp_path)] == [
        tmp_path / ".keel" / "audit-anchor.json"]
    assert [a.path for a in project_anchors(tmp_path, tmp_path / "elsewhere.json")] == [
        tmp_path / ".keel" / "audit-anchor.json", tmp_path / "elsewhere.json"]
    # The caller passes the `audit_anchor` setting; the store never reads the environment.
    monkeypatch.setenv(ANCHOR_ENV, str(tmp_path / "ignored.json"))
    assert [a.path for a in project_anchors(tmp_path)] == [
        tmp_path / ".keel" / "audit-anchor.json"]
