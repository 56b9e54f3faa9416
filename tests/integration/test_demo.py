"""`keel demo`, the main job, end to end in a subprocess: init, serve, traffic, feedback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_demo_serves_real_reviews_takes_feedback_and_refuses_bad_input(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "KEELWORK_USER": "ci"}
    proc = subprocess.run(
        [sys.executable, "-m", "keelwork.interfaces.cli.main", "demo", "--dir",
         str(tmp_path / "demo"), "--requests", "60", "--no-keep-serving"],
        capture_output=True, text=True, timeout=300, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "60 requests: status codes {200: 60}" in out
    fed = re.search(r"ground truth sent later for (\d+) of them \(POST /v1/feedback\): "
                    r"(\d+) stored, (\d+) unknown; live accuracy ([0-9.]+)", out)
    assert fed is not None, out[-3000:]
    sent, stored, unknown, accuracy = fed.groups()
    assert int(sent) == int(stored) == 40 and int(unknown) == 0
    assert 0.6 < float(accuracy) <= 1.0  # the model's held-out accuracy is 0.81
    assert '"status": 422' in out and "instances[0].review" in out
    assert (tmp_path / "demo" / ".keel" / "keel.db").exists()
    # The monitor step reads the demo's own traffic back from the prediction log.
    windows = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d\s*│\s*(\d+)\s*│\s*ok", out)
    assert sum(int(n) for n in windows) >= 60, out[-3000:]
