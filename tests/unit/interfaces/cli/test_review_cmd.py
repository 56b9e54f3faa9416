"""``keel review`` as a user types it: a second reviewer's verdict on an item that has the one
verdict it wants is refused (exit 2, the label kept), and ``keel review stats`` pairs no
agreement out of it; a double-labelled item takes its two verdicts and is measured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.review_store import review_items
from keelwork.interfaces.cli import review_cmd
from keelwork.interfaces.cli.output import EXIT_BAD_INPUT
from review_project import ReviewProject, review_project

runner = CliRunner()
app = typer.Typer()
app.add_typer(review_cmd.app, name="review")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReviewProject]:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KEELWORK_STORAGE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    got = review_project(tmp_path, [{"text": f"ticket {i}"} for i in range(3)])
    yield got
    got.engine.dispose()


def _keel(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_second_reviewer_cannot_relabel_an_item_that_is_done(project: ReviewProject) -> None:
    code, out = _keel("review", "next", "--reviewer", "ana", "--json")
    pid = json.loads(out)["prediction_id"]
    assert _keel("review", "label", pid, "question", "--reviewer", "ana") == (
        0, f'labelled {pid}: "question"\n')
    code, out = _keel("review", "label", pid, "praise", "--reviewer", "bob")
    assert code == EXIT_BAD_INPUT and "has the 1 verdict it wants already" in out, out
    stored = LabelStore(project.engine).get(pid)
    assert stored is not None and (stored.label, stored.source) == ("question", "review:ana")
    code, out = _keel("review", "stats", "--json")
    assert code == 0 and json.loads(out) == {"items": {"done": 1, "open": 2}, "agreement": []}


def test_a_double_labelled_item_is_measured(project: ReviewProject) -> None:
    pid = project.ids[0]
    with project.engine.begin() as conn:
        conn.execute(update(review_items).where(
            review_items.c.prediction_id == pid).values(wanted=2))
    assert _keel("review", "label", pid, "bug", "--reviewer", "ana")[0] == 0
    assert _keel("review", "label", pid, "bug", "--reviewer", "bob")[0] == 0
    code, out = _keel("review", "label", pid, "praise", "--reviewer", "carol")
    assert code == EXIT_BAD_INPUT and "has the 2 verdicts it wants already" in out, out
    code, out = _keel("review", "stats", "--json")
    assert json.loads(out)["agreement"] == [{"reviewers": ["ana", "bob"], "items": 1,
                                             "agreement": 1.0, "kappa": None}]
