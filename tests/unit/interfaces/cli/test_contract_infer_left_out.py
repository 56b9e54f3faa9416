"""``keel contract infer`` on a file with a column it cannot type (ISO dates in JSON lines, read
as timestamps): the draft says ``extra_fields: ignore`` and names the column, so ``keel
validate`` of the very reference file passes, and its held-out claim is what validate finds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app

runner = CliRunner()


def _reference(tmp_path: Path) -> Path:
    data = tmp_path / "ref.jsonl"
    data.write_text("".join(
        json.dumps({"age": 20 + i % 40, "day": f"2024-01-{i % 28 + 1:02d}", "label": i % 2})
        + "\n" for i in range(60)))
    return data


def test_the_draft_accepts_the_reference_data_it_left_a_column_of(tmp_path: Path) -> None:
    data, out = _reference(tmp_path), tmp_path / "c.yaml"
    drafted = runner.invoke(app, ["contract", "infer", str(data), "--out", str(out),
                                  "--margin", "0.1", "-x", "label"])
    assert drafted.exit_code == 0, drafted.output
    text = out.read_text()
    assert "# Left out: day (timestamp[s] columns have no contract type)" in text
    assert re.search(r"^  extra_fields: ignore  # .*\bday\b", text, re.M), text
    claim = re.search(r"refuses (\d+\.\d)% of the other (\d+)", text)
    assert claim and claim.group(1) == "0.0", text

    check = runner.invoke(app, ["validate", str(data), "-c", str(out), "--json"])
    assert check.exit_code == 0, check.output
    report = json.loads(check.output[check.output.index("{"):])
    assert (report["rows"], report["failed_rows"]) == (60, 0)


def test_a_draft_without_left_out_columns_stays_strict(tmp_path: Path) -> None:
    data = tmp_path / "ref.jsonl"
    data.write_text("".join(json.dumps({"age": 20 + i % 40, "gone": None}) + "\n"
                            for i in range(60)))
    drafted = runner.invoke(app, ["contract", "infer", str(data), "--margin", "0.1"])
    assert drafted.exit_code == 0, drafted.output
    assert "  extra_fields: reject\n" in drafted.output
    assert "Left out: gone (every value is null)" in drafted.output
