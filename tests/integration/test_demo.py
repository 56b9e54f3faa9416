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


def test_tabular_demo_serves_credit_applications_with_missing_values(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "KEELWORK_USER": "ci"}
    proc = subprocess.run(
        [sys.executable, "-m", "keelwork.interfaces.cli.main", "demo", "--template", "tabular",
         "--dir", str(tmp_path / "credit"), "--requests", "90", "--no-keep-serving"],
        capture_output=True, text=True, timeout=300, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "keel init --template tabular" in out and "registered credit:1" in out
    assert "90 requests: status codes {200: 90}" in out
    fed = re.search(r"ground truth sent later for (\d+) of them \(POST /v1/feedback\): "
                    r"(\d+) stored, (\d+) unknown; live accuracy ([0-9.]+)", out)
    assert fed is not None, out[-3000:]
    sent, stored, unknown, accuracy = fed.groups()
    assert int(sent) == int(stored) == 60 and int(unknown) == 0
    assert 0.6 < float(accuracy) <= 1.0  # the model's test accuracy is 0.77
    # the bad request names each bad field: a negative age, a word for income, an unknown home
    assert '"status": 422' in out
    assert all(f"instances[0].{f}" in out for f in ("age", "income", "home"))
    windows = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d\s*│\s*(\d+)\s*│\s*(?:ok|drift)", out)
    assert sum(int(n) for n in windows) >= 90, out[-3000:]


def test_demo_refuses_a_project_of_another_template(tmp_path: Path) -> None:
    from keelwork.service.projects import init_project

    init_project(tmp_path / "p", "tabular", train=False)
    proc = subprocess.run(
        [sys.executable, "-m", "keelwork.interfaces.cli.main", "demo", "--template", "text",
         "--dir", str(tmp_path / "p"), "--no-keep-serving"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert "serves credit, not the 'text' template's model 'sentiment'" in proc.stderr
