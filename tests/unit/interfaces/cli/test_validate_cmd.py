"""``keel validate`` and ``keel contract infer``: reports, exit codes, outputs, bad input."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from keelwork.adapters.data.readers import read_table
from keelwork.adapters.data.tables import read_data
from keelwork.interfaces.cli import contract_cmd, validate_cmd

runner = CliRunner()
app = typer.Typer()
app.add_typer(contract_cmd.app, name="contract")
validate_cmd.register(app)

CONTRACT = """\
contract:
  inputs:
    - {name: age, type: integer, min: 0, max: 120}
    - {name: income, type: float, min: 0}
    - {name: color, type: category, categories: [red, green, blue]}
    - {name: zip, type: string, min_length: 5, max_length: 5}
  extra_fields: reject
"""


def rows(n: int = 10_000) -> list[dict[str, Any]]:
    return [{"age": i % 90, "income": i * 1.5, "color": ["red", "green", "blue"][i % 3],
             "zip": f"{i % 100000:05d}"} for i in range(n)]


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    head = list(records[0])
    path.write_text(",".join(head) + "\n" + "".join(
        ",".join("" if r[k] is None else str(r[k]) for k in head) + "\n" for r in records))
    return path


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    path = tmp_path / "contract.yaml"
    path.write_text(CONTRACT)
    return path


def run(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# --------------------------------------------------------------------------- validate
def test_valid_file_exits_0(tmp_path: Path, contract: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows())
    result = run("validate", data, "--contract", contract)
    assert result.exit_code == 0, result.output
    assert "all 10,000 rows" in result.output
    # zip codes such as 00042 stay text: the contract says string, CSV is read accordingly


def test_failing_rows_exit_1_with_report_and_outputs_that_add_up(tmp_path: Path,
                                                                 contract: Path) -> None:
    records = rows()
    records[3]["age"] = -1
    records[4]["color"] = "pink"
    records[5]["age"] = "n/a"  # NA-like spelling: null
    records[6]["income"] = "lots"
    records[7]["zip"] = "1234"
    data = write_csv(tmp_path / "d.csv", records)
    out, bad = tmp_path / "ok.parquet", tmp_path / "bad.csv"
    result = run("validate", data, "-c", contract, "--output", out, "--quarantine", bad,
                 "--examples", "2")
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    for text in ("5 of 10,000 rows fail (0.05%)", "age", "min", "nullable", "pink"):
        assert text in output
    passing, failing = pq.read_table(out), read_table(bad)
    assert passing.num_rows + failing.num_rows == 10_000
    assert failing.column("_row").to_pylist() == [3, 4, 5, 6, 7]
    reasons = failing.column("_reasons").to_pylist()
    assert reasons[0] == "age must be >= 0; got -1"
    assert reasons[3] == "income must be a number; got 'lots' (a string)"
    assert failing.column("income").to_pylist()[3] == "lots"  # kept as read
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("encoded", [False, True], ids=["text", "dictionary"])
def test_parquet_categories_are_read_as_dictionaries_and_written_as_they_came(
        tmp_path: Path, contract: Path, encoded: bool) -> None:
    records = rows(100_000)
    records[7]["color"] = "pink"
    records[99_999]["color"] = None
    table = pa.Table.from_pylist(records)
    if encoded:
        table = table.set_column(2, "color", table.column("color").dictionary_encode())
    data = tmp_path / "d.parquet"
    pq.write_table(table, data, row_group_size=30_000)
    read = read_data(data, None, dictionary=["color", "nope"])
    assert pa.types.is_dictionary(read.schema.field("color").type)  # each value checked once
    assert read.schema.field("zip").type == table.schema.field("zip").type  # not asked for
    out, bad = tmp_path / "ok.parquet", tmp_path / "bad.parquet"
    result = run("validate", data, "-c", contract, "-o", out, "-q", bad, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert {(f["column"], f["rule"], f["count"]) for f in report["failures"]} == {
        ("color", "category", 1), ("color", "nullable", 1)}
    assert {f["rule"]: [e["value"] for e in f["examples"]] for f in report["failures"]} == {
        "category": ["pink"], "nullable": [None]}
    passing, failing = pq.read_table(out), pq.read_table(bad)
    assert passing.schema.field("color").type == table.schema.field("color").type
    assert failing.schema.field("color").type == table.schema.field("color").type
    assert failing.column("_row").to_pylist() == [7, 99_999]
    assert failing.column("_reasons").to_pylist() == [
        "color must be one of 'red', 'green', 'blue'; got 'pink'", "color must not be null; "
        "got null"]
    assert passing.column("color").to_pylist() == [r["color"] for i, r in enumerate(records)
                                                   if i not in (7, 99_999)]


def test_json_report(tmp_path: Path, contract: Path) -> None:
    records = rows(100)
    records[10]["age"] = 500
    data = write_csv(tmp_path / "d.csv", records)
    result = run("validate", data, "--contract", contract, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert (report["valid"], report["rows"], report["failed_rows"]) == (False, 100, 1)
    assert report["failures"] == [{"column": "age", "rule": "max", "count": 1,
                                   "fraction": 0.01, "message": "must be <= 120",
                                   "examples": [{"row": 10, "value": 500}]}]


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl", ".tsv", ".parquet"])
def test_output_formats_round_trip(tmp_path: Path, contract: Path, suffix: str) -> None:
    records = rows(50)
    records[1]["age"] = -5
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out, bad = tmp_path / f"ok{suffix}", tmp_path / f"bad{suffix}"
    assert run("validate", data, "-c", contract, "-o", out, "-q", bad).exit_code == 1
    assert read_table(out).num_rows == 49
    assert read_table(bad).column("_row").to_pylist() == [1]


def test_json_lines_with_mixed_types_are_checked_row_by_row(tmp_path: Path,
                                                            contract: Path) -> None:
    records: list[dict[str, Any]] = rows(20)
    records[2]["age"] = "30"
    records[9]["age"] = 31.0  # an integral float counts as 31 in a file
    records[11]["age"] = 31.5
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    bad = tmp_path / "bad.parquet"
    result = run("validate", data, "-c", contract, "-q", bad, "--json")
    assert result.exit_code == 1
    quarantined = pq.read_table(bad)
    assert quarantined.column("_row").to_pylist() == [2, 11]
    assert quarantined.column("age").to_pylist() == ["30", "31.5"]


@pytest.mark.parametrize("form", ["section", "content", "keel.yaml"])
def test_contract_file_forms(tmp_path: Path, form: str) -> None:
    body = CONTRACT.split("\n", 1)[1]
    text = {"section": CONTRACT,
            "content": "\n".join(line[2:] for line in body.splitlines()) + "\n",
            "keel.yaml": "service: {name: s, owners: [me@example.com]}\nmodels: [{name: m, "
                         "runtime: python, artifact: 'x:y'}]\n" + CONTRACT}[form]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    data = write_csv(tmp_path / "d.csv", rows(10))
    result = run("validate", data, "-c", path)
    assert result.exit_code == 0, result.output


def test_a_billion_laughs_contract_file_is_refused_at_once(tmp_path: Path) -> None:
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    lines += ["inputs:", "  - {name: age, type: category, categories: *a9}"]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    data = write_csv(tmp_path / "d.csv", rows(3))
    started = time.monotonic()
    result = run("validate", data, "-c", path)
    assert time.monotonic() - started < 5.0
    assert result.exit_code == 2, result.output
    assert "YAML aliases" in result.output


# --------------------------------------------------------------------------- bad input
def test_ragged_csv_names_the_line_and_writes_nothing(tmp_path: Path, contract: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows(30))
    data.write_text(data.read_text() + "1,2\n")
    out = tmp_path / "ok.csv"
    result = run("validate", data, "-c", contract, "-o", out)
    assert result.exit_code == 2
    assert "line 32: a row must have 4 fields like the header; got 2" in result.output
    assert not out.exists()


def test_contradicting_contract_names_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inputs:\n  - name: a\n    type: integer\n    min: 5\n    max: 1\n"
                    "  - name: b\n    type: integer\n    min: 0.2\n    max: 0.8\n")
    data = write_csv(tmp_path / "d.csv", [{"a": 1, "b": 1}])
    result = run("validate", data, "-c", path)
    assert result.exit_code == 2
    assert "inputs.0 (line 2): min (5.0) is greater than max (1.0)" in result.output
    path.write_text("inputs:\n  - name: b\n    type: integer\n    min: 0.2\n    max: 0.8\n")
    result = run("validate", data, "-c", path)
    assert result.exit_code == 2
    assert "inputs.0.min (line 4)" in result.output and "no integer" in result.output


@pytest.mark.parametrize(("text", "message"), [
    ("inputs: [\n", "not valid YAML"),
    ("service: {name: s}\n", "holds no contract"),
    ("inputs: []\n", "lists no inputs"),
])
def test_unusable_contract_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    data = write_csv(tmp_path / "d.csv", rows(3))
    result = run("validate", data, "-c", path)
    assert result.exit_code == 2 and message in result.output


def test_failed_write_leaves_no_output(tmp_path: Path, contract: Path) -> None:
    records = rows(20)
    records[0]["age"] = -1
    data = write_csv(tmp_path / "d.csv", records)
    (tmp_path / "file").write_text("")
    out, bad = tmp_path / "ok.csv", tmp_path / "file" / "bad.csv"  # not a directory
    result = run("validate", data, "-c", contract, "-o", out, "-q", bad)
    assert result.exit_code == 2 and "cannot be written" in result.output
    assert not out.exists() and not bad.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contract.yaml", "d.csv", "file"]


@pytest.mark.parametrize(("name", "message"), [
    ("missing.csv", "no such file"), ("empty.csv", "the file is empty"),
    ("latin.csv", "is not UTF-8"), ("d.xlsx", "the format must be one of")])
def test_bad_data_files_exit_2(tmp_path: Path, contract: Path, name: str,
                               message: str) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "latin.csv").write_bytes("age\n\xe9\n".encode("latin-1"))
    (tmp_path / "d.xlsx").write_bytes(b"x")
    result = run("validate", tmp_path / name, "-c", contract)
    assert result.exit_code == 2 and message in result.output


def test_output_must_not_be_the_input(tmp_path: Path, contract: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows(3))
    result = run("validate", data, "-c", contract, "-o", data)
    assert result.exit_code == 2 and "is the input file" in result.output


# --------------------------------------------------------------------------- contract infer
def test_infer_writes_a_commented_contract_that_validates_its_data(tmp_path: Path) -> None:
    records = rows(2000)
    for r in records:
        r["label"] = r["age"] % 2
    data = tmp_path / "ref.parquet"
    pq.write_table(pa.Table.from_pylist(records), data)
    out = tmp_path / "contract.yaml"
    result = run("contract", "infer", data, "--out", out, "--exclude", "label", "--margin",
                 "0")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Drafted by `keel contract infer` from ref.parquet (2,000 rows)")
    assert "- name: age  # observed 0..89; 0 nulls in 2,000 rows" in text
    assert "Not inputs: label" in text
    assert run("contract", "infer", data, "--out", out).exit_code == 2  # exists: --force
    table = pq.read_table(data).drop_columns(["label"])
    pq.write_table(table, tmp_path / "features.parquet")
    check = run("validate", tmp_path / "features.parquet", "-c", out)
    assert check.exit_code == 0, check.output
    printed = run("contract", "infer", data, "-x", "label", "-x", "zip")
    assert printed.exit_code == 0 and "contract:\n  inputs:" in printed.output
    assert "name: zip" not in printed.output


def test_infer_bad_input(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows(5))
    result = run("contract", "infer", data, "--exclude", "nope")
    assert result.exit_code == 2 and "has no column 'nope'" in result.output
    gz = tmp_path / "bad.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}\n{"a": \n'))
    result = run("contract", "infer", gz)
    assert result.exit_code == 2 and "line 2" in result.output


def test_cli_modules_import_nothing_heavy() -> None:
    code = ("import sys; from keelwork.interfaces.cli import contract_cmd, validate_cmd; "
            "print(','.join(m for m in ('numpy', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


# --------------------------------------------------------------------------- --exclude
def test_exclude_skips_the_named_fields_and_keeps_their_values(tmp_path: Path,
                                                               contract: Path) -> None:
    records = rows(100)
    for r in records[:7]:
        r["age"] = -1  # breaks min: 0
    for r in records[:3]:
        r["color"] = "mauve"  # breaks the categories
    data = write_csv(tmp_path / "d.csv", records)
    checked = run("validate", data, "-c", contract, "--json")
    assert checked.exit_code == 1
    assert {f["column"] for f in json.loads(checked.output)["failures"]} == {"age", "color"}
    one = run("validate", data, "-c", contract, "--exclude", "age", "--json")
    report = json.loads(one.output)
    assert one.exit_code == 1 and report["excluded"] == ["age"]
    assert {f["column"] for f in report["failures"]} == {"color"}
    both = run("validate", data, "-c", contract, "--exclude", "age", "-x", "color",
               "-o", tmp_path / "out.csv")
    assert both.exit_code == 0, both.output
    out = read_table(tmp_path / "out.csv")
    assert out.num_rows == 100 and out.column("age").to_pylist()[:7] == [-1] * 7


def test_exclude_lets_a_required_field_be_absent(tmp_path: Path, contract: Path) -> None:
    data = write_csv(tmp_path / "d.csv", [{k: v for k, v in r.items() if k != "zip"}
                                          for r in rows(50)])
    assert run("validate", data, "-c", contract).exit_code == 1
    assert run("validate", data, "-c", contract, "--exclude", "zip").exit_code == 0


def test_exclude_of_an_unknown_field_is_bad_input_naming_it(tmp_path: Path,
                                                            contract: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows(10))
    result = runner.invoke(app, ["validate", str(data), "-c", str(contract), "--exclude",
                                 "agee"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "--exclude names 'agee', which is not a field of the contract" in message
    assert "(fields: age, income, color, zip)" in message
    every = ["--exclude=" + c for c in ("age", "income", "color", "zip")]
    result = runner.invoke(app, ["validate", str(data), "-c", str(contract), *every])
    assert result.exit_code == 2 and "leaves no field" in result.output
