"""A server that shuts down leaves no connection to the project's database open in its
process: its loops finish the round in hand (the monitoring loop's first round runs in a
thread as the server starts) before the engine is disposed. A connection left open would hold
the database's files, so a restore of a backup in place failed with "disk I/O error"."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from keelwork.interfaces.http.server import build_server_app
from keelwork.spec import load_spec
from live_server import ADDER_SPEC, FIXTURES

SPEC = ADDER_SPEC.format(fx=FIXTURES) + """\
monitoring:
  reference: reference.csv
  windows: [1h]
"""


def _open_files_under(folder: Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between the listing and the read
            continue
        if target.startswith(str(folder)):
            out.append(target)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="reads the process's open files from /proc/self/fd (Linux only)")
def test_a_closed_server_holds_no_connection_to_the_store(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / "reference.csv").write_text(
        "a,b\n" + "".join(f"{i / 10},{i % 7}\n" for i in range(200)))
    resolved = load_spec(tmp_path / "keel.yaml")
    for _ in range(3):  # each start runs the monitoring loop's first round as it opens
        with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
            r = client.post("/v1/models/adder:predict", json={"instances": [{"a": 1.0, "b": 2}]})
            assert r.status_code == 200, r.text
        assert _open_files_under(tmp_path / ".keel") == []
    # So a restore in place (SQLite's backup API onto the live file) goes through.
    copy = tmp_path / "copy.db"
    src, dst = sqlite3.connect(tmp_path / ".keel" / "keel.db"), sqlite3.connect(copy)
    try:
        src.backup(dst)
        dst.backup(src)
    finally:
        src.close()
        dst.close()
