"""``keel score`` on JSON lines, as a user types it: an omitted optional field is accepted and
an omitted required one is dead-lettered as ``required``, as the HTTP request check says."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fixtures.models import FIXTURES_DIR
from keelwork.adapters.stores.registry_store import open_registry
from keelwork.interfaces.cli.main import app
from keelwork.service.registration import register_model

runner = CliRunner()

KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {name: lin, owners: [ml@example.com]}
models:
  - name: lin
    runtime: python
contract:
  inputs:
    - {name: a, type: float, min: 0, max: 10}
    - {name: b, type: float, min: 0, max: 10}
    - {name: c, type: float, min: 0, max: 10}
    - {name: note, type: string, required: false}
  extra_fields: ignore
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "keel.yaml").write_text(KEEL_YAML)
    url = f"sqlite:///{project / '.keel' / 'keel.db'}"
    (project / ".keel").mkdir()
    with open_registry(project, url) as registry:
        register_model(registry, "lin", "callables:linear_score", "python",
                       options={"path": str(FIXTURES_DIR)}, source_dir=project)
    return project


def test_keel_score_json_lines_judges_the_keys_each_line_has(tmp_path: Path) -> None:
    project = _project(tmp_path)
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"a": 1.0, "b": 2.0, "c": 3.0, "note": "x"},
        {"a": 1.0, "b": 2.0, "c": 3.0},              # no note: optional, accepted
        {"b": 2.0, "c": 3.0, "note": "y"},           # no a: required
    ]) + "\n")
    letters = tmp_path / "dl.jsonl"
    res = runner.invoke(app, ["score", str(data), "-m", "lin", "--project", str(project),
                              "--dead-letters", str(letters)])
    assert res.exit_code == 0, res.output
    assert "ingested 2" in res.output and "dead-lettered 1" in res.output, res.output
    [letter] = [json.loads(line) for line in letters.read_text().splitlines()]
    assert letter["line"] == 3
    assert [(r["path"], r["rule"]) for r in letter["reasons"]] == [("a", "required")]
    assert "The 'a' field is required but was not given" in letter["reasons"][0]["message"]
    assert letter["raw"] == {"b": 2.0, "c": 3.0, "note": "y"}  # as the line had it

    # keel validate refuses the same rows, and only them
    check = runner.invoke(app, ["validate", str(data), "-c", str(project / "keel.yaml"),
                                "--json"])
    assert check.exit_code == 1, check.output
    report = json.loads(check.output[check.output.index("{"):])
    assert (report["rows"], report["failed_rows"]) == (3, 1)
    assert [f["column"] for f in report["failures"]] == ["a"]
