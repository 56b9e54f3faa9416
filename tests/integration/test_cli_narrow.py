"""The CLI's tables in an 80-column terminal: readable, and no reason is ever cut short.

Each command runs as a real process with ``COLUMNS=80``. Rich's default would end a word that
does not fit its column with an ellipsis; here every message, reason and requirement must be
printed whole: the text of its column, read back from the table's cells (words may be folded
across lines, so whitespace is ignored), holds each reason that the command's ``--json``
output gives, and no ellipsis appears anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WIDTH = 80
LONG = "supercalifragilisticexpialidocious_" * 3  # one word far wider than any column


def _keel(*args: str, cwd: Path | None = None, width: int = WIDTH) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
                          env={**os.environ, "COLUMNS": str(width), "TERM": "dumb",
                               "NO_COLOR": "1", "KEELWORK_USER": "narrow-test"})
    return done.returncode, done.stdout + done.stderr


def _column(out: str, index: int) -> str:
    """The text of column ``index`` of the table in ``out``, whitespace removed."""
    cells = [line.split("│")[index + 1] for line in out.splitlines()
             if line.startswith("│") and line.count("│") > index + 1]
    return "".join("".join(cells).split())


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _assert_readable(out: str) -> None:
    # (a message may shorten a huge value it quotes, "abc... (116 characters)": so does its
    # JSON, which the callers compare with; Rich's own cut is the ellipsis character)
    assert "…" not in out, out
    assert all(len(line) <= WIDTH for line in out.splitlines()), out


def test_validate_prints_every_requirement_whole(tmp_path: Path) -> None:
    categories = [f"category_{LONG}_{i}" for i in range(4)]
    (tmp_path / "c.yaml").write_text(json.dumps({"contract": {"inputs": [
        {"name": "age", "type": "integer", "min": 0, "max": 120},
        {"name": "kind", "type": "category", "categories": categories},
        {"name": "code", "type": "string", "max_length": 5},
    ]}}))
    rows = ["age,kind,code", f"-4,{categories[0]},ab", f"30,unknown_{LONG},{LONG}",
            f"200,{categories[1]},abc"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    rc, out = _keel("validate", "d.csv", "-c", "c.yaml", cwd=tmp_path)
    assert rc == 1, out
    _assert_readable(out)
    rc, raw = _keel("validate", "d.csv", "-c", "c.yaml", "--json", cwd=tmp_path)
    failures = json.loads(raw)["failures"]
    assert len(failures) == 4
    shown = _column(out, 3)  # column, rule, rows, requirement ('share' left out at 80)
    for f in failures:
        assert _squeeze(f["message"]) in shown, (f["message"], out)
    assert "share" not in out  # the low-value column went, the reasons stayed


def test_drift_prints_every_reason_whole(tmp_path: Path) -> None:
    ref = ["amount,region,note"] + [f"{i % 50},north,x" for i in range(200)]
    cur = ["amount,region,note"] + [f"{i % 50 + 40},north," for i in range(200)]
    (tmp_path / "ref.csv").write_text("\n".join(ref) + "\n")
    (tmp_path / "cur.csv").write_text("\n".join(cur) + "\n")
    rc, out = _keel("drift", "ref.csv", "cur.csv", cwd=tmp_path)
    assert rc == 0, out
    _assert_readable(out)
    rc, raw = _keel("drift", "ref.csv", "cur.csv", "--json", cwd=tmp_path)
    columns = json.loads(raw)["columns"]
    reasons = [c["reason"] for c in columns if c.get("drift") is None and c.get("reason")]
    assert reasons, columns  # the empty column is not compared, and says why
    shown = _column(out, 4)  # column, verdict, score, threshold, detail
    for reason in reasons:
        assert _squeeze(reason) in shown, (reason, out)


@pytest.mark.parametrize("width", [80, 200])
def test_models_history_prints_the_reason_whole(tmp_path: Path, width: int) -> None:
    rc, out = _keel("models", "register", "rules", "json:dumps", "--runtime", "python",
                    "--project", str(tmp_path), width=width)
    assert rc == 0, out
    reason = f"promoted after the canary held for a week; ticket {LONG} approved by ops"
    rc, out = _keel("models", "alias", "rules", "1", "champion", "--reason", reason,
                    "--project", str(tmp_path), width=width)
    assert rc == 0, out
    rc, out = _keel("models", "history", "rules", "--project", str(tmp_path), width=width)
    assert rc == 0, out
    assert "…" not in out and all(len(line) <= width for line in out.splitlines()), out
    assert _squeeze(reason) in _column(out, 5), out
