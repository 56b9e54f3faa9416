"""``keel data`` (snapshot, list, show, diff), bad input files, and lineage in ``keel models``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from keelwork.interfaces.cli import data_cmd, models_cmd

runner = CliRunner()
# main.py wires ``data`` next to ``models``; the same two groups, built here.
cli = typer.Typer()
cli.add_typer(data_cmd.app, name="data")
cli.add_typer(models_cmd.app, name="models")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_USER", "ana")
    monkeypatch.setenv("COLUMNS", "240")  # wide Rich tables: whole words in the assertions
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def keel(*args: str) -> Result:
    result = runner.invoke(cli, list(args))
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def ok(*args: str) -> str:
    result = keel(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


def bad(*args: str) -> str:
    """Run a command that must fail with exit 2; return its message on one line."""
    result = keel(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:"), result.stderr
    return " ".join(result.stderr.split())


def table(n: int = 600, seed: int = 0, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "user": [f"u{i % 90}" for i in range(n)],
        "amount": rng.normal(20 + shift, 4, n).round(2),
        "channel": rng.choice(["web", "app"] if not shift else ["web", "shop"], n),
        "day": pa.array([f"2024-03-{1 + i % 28:02d}" for i in range(n)]).cast(pa.date32()),
    })


def csv_file(path: Path, data: pa.Table) -> Path:
    pcsv.write_csv(data, path)
    return path


def nothing_written(project: Path) -> bool:
    root = project / ".keel" / "datasets"
    stored = [p for p in root.glob("*/*") if p.parent.name != "tmp"] if root.exists() else []
    tmp = list((root / "tmp").iterdir()) if (root / "tmp").exists() else []
    listed = ok_json("data", "list") if (project / ".keel" / "keel.db").exists() else []
    return not stored and not tmp and not listed


# --------------------------------------------------------------------------- data commands
def test_snapshot_list_show(project: Path) -> None:
    source = csv_file(project / "tx.csv", table())
    out = ok("data", "snapshot", str(source), "--name", "tx")
    assert re.search(r"snapshot tx:1 \(600 rows, 4 columns, sha256 [0-9a-f]{12}, ", out), out
    again = ok("data", "snapshot", str(source), "--name", "tx")
    assert "unchanged: tx:1 already holds this content" in again
    pq.write_table(table(seed=1), project / "tx2.parquet")
    second = ok_json("data", "snapshot", "tx2.parquet", "--name", "tx",
                     "--subject-column", "user")
    assert (second["ref"], second["created"], second["subject_column"]) == ("tx:2", True, "user")
    assert second["schema"][3] == {"column": "day", "type": "date32[day]"}

    listed = ok_json("data", "list")
    assert [v["ref"] for v in listed] == ["tx:1", "tx:2"]
    assert listed[0]["source"] == str(source.absolute()) and listed[0]["created_by"] == "ana"
    text = ok("data", "list")
    assert "tx:2" in text and listed[1]["sha256"][:12] in text and "user" in text

    shown = ok_json("data", "show", "tx:1")
    assert shown["sha256"] == listed[0]["sha256"] and shown["rows"] == 600
    kinds = {c["name"]: c["kind"] for c in shown["profile"]["columns"]}
    # 90 distinct ids in 600 rows are described by lengths; CSV has no date type: text.
    assert kinds == {"user": "text", "amount": "numeric", "channel": "categorical",
                     "day": "categorical"}
    assert {c["name"]: c["kind"] for c in ok_json("data", "show", "tx:2")["profile"]["columns"]
            }["day"] == "temporal"  # from Parquet
    text = " ".join(ok("data", "show", "tx").split())  # NAME alone: the latest
    assert "tx:2" in text and "date32[day]" in text and "2024-03-01" in text
    # tx:2 names its subjects: its rows are sealed per subject and its stored profile keeps
    # no value of a text column (those would outlive an erasure); tx:1's keeps them (above)
    assert re.search(r"channel │ large_string │ redacted │ 0 │ 2 │ - │ - │ - │ length", text), text
    assert re.search(r"user │ large_string │ redacted │ 0 │ 90 │ - │ - │ - │ length", text)


def test_big_files_get_a_progress_bar(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keelwork.service import datasets as snapshot_use_case

    stages: list[tuple[str, int, int | None]] = []
    real = snapshot_use_case.snapshot_file

    def spy(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        assert progress is not None

        def record(stage: str, done: int, total: int | None) -> None:
            stages.append((stage, done, total))
            progress(stage, done, total)

        return real(*args, progress=record, **kwargs)

    monkeypatch.setattr(data_cmd, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.setattr(snapshot_use_case, "snapshot_file", spy)
    out = ok("data", "snapshot", str(csv_file(project / "a.csv", table())), "--name", "tx")
    assert "snapshot tx:1 (600 rows" in out
    assert ("reading", 600, None) in stages and ("writing", 1, 1) in stages


def test_diff_text_and_json(project: Path) -> None:
    ok("data", "snapshot", str(csv_file(project / "a.csv", table())), "--name", "tx")
    moved = table(seed=2, shift=8).drop_columns(["day"]).append_column("promo", pa.array(
        [True] * 600))
    ok("data", "snapshot", str(csv_file(project / "b.csv", moved)), "--name", "tx")
    result = ok_json("data", "diff", "tx:1", "tx:2")
    changes = {(c["column"], c["change"]) for c in result["schema_changes"]}
    assert changes == {("day", "removed"), ("promo", "added")}
    columns = {c["column"]: c for c in result["columns"]}
    assert columns["amount"]["shifted"] and columns["amount"]["mean_shift"] > 1.5
    assert columns["channel"]["new_categories"] == ["shop"]
    assert columns["channel"]["missing_categories"] == ["app"]
    assert not columns["user"]["shifted"]
    text = " ".join(ok("data", "diff", "tx:1", "tx").split())
    assert "rows: 600 -> 600 (+0)" in text
    assert re.search(r"day │ removed │ large_string │ -", text), text
    assert re.search(r"promo │ added │ - │ bool", text), text
    assert re.search(r"channel │ categorical .*│ \+shop -app │ shifted", text), text


def test_reads_do_not_create_a_store_and_unknown_refs_fail(project: Path) -> None:
    assert "No snapshots" in ok("data", "list")
    assert ok_json("data", "list") == []
    assert "no snapshots yet" in bad("data", "show", "tx")
    assert not (project / ".keel").exists()
    ok("data", "snapshot", str(csv_file(project / "a.csv", table())), "--name", "tx")
    assert "Dataset 'tx' has no version 5" in bad("data", "show", "tx:5")
    assert "Did you mean 'tx'" in bad("data", "diff", "tx:1", "txx:1")
    assert "NAME:VERSION" in bad("data", "show", "tx:latest")


# --------------------------------------------------------------------------- bad input
def test_ragged_csv_names_file_and_line(project: Path) -> None:
    ragged = project / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n6,7\n", encoding="utf-8")
    message = bad("data", "snapshot", str(ragged), "--name", "tx")
    assert "ragged.csv" in message and re.search(r"\bline 3\b", message), message
    assert nothing_written(project)


def test_wrong_encoding_names_file_line_and_column(project: Path) -> None:
    latin = project / "latin1.csv"
    latin.write_bytes("id,city\n1,Berlin\n2,K\xf6ln\n".encode("latin-1"))
    message = bad("data", "snapshot", str(latin), "--name", "tx")
    assert "latin1.csv" in message and re.search(r"\bline 3\b", message), message
    assert "city" in message
    assert nothing_written(project)


@pytest.mark.parametrize("content", [b"", b"a,b\n"], ids=["empty", "header-only"])
def test_empty_files_are_refused(project: Path, content: bytes) -> None:
    empty = project / "empty.csv"
    empty.write_bytes(content)
    message = bad("data", "snapshot", str(empty), "--name", "tx")
    assert "empty.csv" in message
    assert nothing_written(project)


def test_unreadable_files_and_bad_subject_columns(project: Path) -> None:
    assert "missing.csv" in bad("data", "snapshot", "missing.csv", "--name", "tx")
    (project / "folder.csv").mkdir()
    assert "folder.csv" in bad("data", "snapshot", "folder.csv", "--name", "tx")
    source = csv_file(project / "a.csv", table())
    message = bad("data", "snapshot", str(source), "--name", "tx", "--subject-column", "usr")
    assert "'usr'" in message and "a.csv" in message and "user, amount" in message
    assert nothing_written(project)


# --------------------------------------------------------------------------- lineage
def _git_project(project: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(project), "-c", "user.name=t",
                               "-c", "user.email=t@example.com", *args],
                              capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    (project / "train.py").write_text("print('training')\n", encoding="utf-8")
    git("add", "train.py")
    git("commit", "-q", "-m", "training code")
    return git("rev-parse", "HEAD")


@pytest.mark.usefixtures("project")
def test_models_show_displays_lineage(project: Path, store_url: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_STORAGE_URL", store_url)
    commit = _git_project(project)
    snap = ok_json("data", "snapshot", str(csv_file(project / "a.csv", table())), "--name", "tx")
    (project / "model.skops").write_bytes(b"weights")
    ok("models", "register", "fraud", "model.skops", "--runtime", "sklearn", "--no-verify",
       "--dataset-version", "tx:1")
    shown = ok_json("models", "show", "fraud:1")
    assert shown["lineage"] == {
        "model": "fraud:1",
        "dataset": {"ref": "tx:1", "sha256": snap["sha256"], "rows": 600,
                    "created_at": snap["created_at"], "source": snap["source"]},
        "code_commit": commit, "git_dirty": False}
    text = " ".join(ok("models", "show", "fraud:1").split())
    lineage = text[text.index("lineage"):]
    assert re.search(rf"model fraud:1 .*dataset tx:1 sha256 {snap['sha256'][:12]} 600 rows "
                     rf"created {snap['created_at'][:10]} .*code commit {commit} \(clean\)",
                     lineage), lineage


def test_register_refuses_a_missing_snapshot_but_keeps_free_text(project: Path) -> None:
    (project / "model.skops").write_bytes(b"weights")
    message = bad("models", "register", "fraud", "model.skops", "--runtime", "sklearn",
                  "--no-verify", "--dataset-version", "tx:3")
    assert "'tx:3'" in message and "keel data list" in message
    assert not (project / ".keel").exists()  # nothing registered, no store created
    ok("data", "snapshot", str(csv_file(project / "a.csv", table())), "--name", "tx")
    assert "keel data list" in bad("models", "register", "fraud", "model.skops", "--runtime",
                                   "sklearn", "--no-verify", "--dataset-version", "tx:3")
    ok("models", "register", "fraud", "model.skops", "--runtime", "sklearn", "--no-verify",
       "--dataset-version", "exported 2024-05-01")
    shown = ok_json("models", "show", "fraud")
    assert shown["dataset_version"] == "exported 2024-05-01"
    assert shown["lineage"]["dataset"] is None
    assert "lineage" not in ok("models", "show", "fraud")
