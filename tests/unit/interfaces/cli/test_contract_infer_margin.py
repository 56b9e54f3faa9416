"""``keel contract infer`` measures its draft on held-out rows and picks the margin from it.

Real data shipped with scikit-learn: on wine (178 rows, 13 measurements) the old default margin
(10 % of each range) drafted on 70 % of the rows refused 7 % of the other 30 %, silently (the
issue saw 8 %). Now the command says how many held-out rows its draft refuses and, without
``--margin``, widens until at most 1 % of them fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app

runner = CliRunner()


def _split(tmp_path: Path, loader: str) -> tuple[Path, Path, int]:
    from sklearn import datasets

    frame = getattr(datasets, loader)(as_frame=True).frame.sample(frac=1.0, random_state=5)
    cut = int(len(frame) * 0.7)
    frame.iloc[:cut].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[cut:].drop(columns=["target"]).to_csv(tmp_path / "new.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "new.csv", len(frame) - cut


def _refused(tmp_path: Path, contract: Path, new: Path) -> int:
    import json

    r = runner.invoke(app, ["validate", str(new), "-c", str(contract), "--json"])
    assert r.exit_code in (0, 1), r.output
    report = json.loads(r.output[r.output.index("{"):])
    return int(report["failed_rows"])


@pytest.mark.parametrize("loader", ["load_wine", "load_breast_cancer"])
def test_the_default_margin_is_chosen_from_a_held_out_split(tmp_path: Path,
                                                           loader: str) -> None:
    pytest.importorskip("sklearn")
    train, new, n_new = _split(tmp_path, loader)
    old = runner.invoke(app, ["contract", "infer", str(train), "-x", "target", "--margin",
                              "0.1", "--out", str(tmp_path / "old.yaml")])
    assert old.exit_code == 0, old.output
    said = re.search(r"margin 0\.1 refuses (\d+\.\d)% of the other", old.output)
    assert said and float(said.group(1)) > 1.0, old.output  # the old default, measured

    chosen = runner.invoke(app, ["contract", "infer", str(train), "-x", "target", "--out",
                                 str(tmp_path / "new.yaml")])
    assert chosen.exit_code == 0, chosen.output
    got = re.search(r"Margin (\d+(\.\d+)?) chosen", chosen.output)
    assert got and float(got.group(1)) > 0.1, chosen.output
    header = (tmp_path / "new.yaml").read_text().split("contract:")[0]
    assert "held-out check" in header and f"Margin {got.group(1)} chosen" in header
    before = _refused(tmp_path, tmp_path / "old.yaml", new)
    after = _refused(tmp_path, tmp_path / "new.yaml", new)
    assert before / n_new > 0.02 and after / n_new <= 0.02 and after < before, (before, after)


def test_small_files_skip_the_check_and_keep_the_old_default(tmp_path: Path) -> None:
    data = tmp_path / "few.csv"
    data.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(10)))
    r = runner.invoke(app, ["contract", "infer", str(data)])
    assert r.exit_code == 0, r.output
    assert "held-out check: skipped (10 rows are too few to split); margin 0.1" in r.output
