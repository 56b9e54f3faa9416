"""An operator's rollout commands from a process of its own, as `keel rollback` or `keel
rollout abort` run: a live test's change must not be slowed by the test process's own client
threads (each of the operation's store round trips waits for the GIL behind them: a rollback of
about 20 ms took 7-9 s beside 8 busy threads), nor wait for a fresh interpreter's imports.

The process starts first and opens the project's stores; each command then runs at once and
reports the ``time.monotonic()`` at which it started (the system-wide clock on Linux, comparable
with the test process's), so the test still counts from before the change, not from its end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

_SCRIPT = """\
import json, sys, time
from pathlib import Path
from keelwork.service.rollout.operations import open_rollout_ops
ops = open_rollout_ops(Path(sys.argv[1]), sys.argv[2] or None)
ops.store.revision()  # connected before the first command
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    started = time.monotonic()
    if command["op"] == "rollback":
        result = ops.rollback(command["model"], actor="tester")
    else:
        result = ops.act(command["model"], command["op"], actor="tester",
                         reason="test " + command["op"]).phase
    print(json.dumps({"started": started, "result": result}), flush=True)
ops.close()
"""


class OperatorProcess:
    """A process that runs rollout commands on ``project``'s store when told to."""

    def __init__(self, project: Path, storage_url: str | None) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(project), storage_url or ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self._read()) == {"ready": True}

    def _read(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        assert line, f"the operator process ended (exit {self._proc.poll()})"
        return line

    def run(self, op: str, model: str) -> tuple[float, Any]:
        """Run ``op`` (``rollback``, or a rollout action such as ``abort``) on ``model``:
        (the monotonic time it started at, its result)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, "model": model}) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._read())
        return float(answer["started"]), answer["result"]

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        finally:
            if self._proc.stdout is not None:
                self._proc.stdout.close()

    def __enter__(self) -> OperatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
