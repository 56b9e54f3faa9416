"""``keel init``: templates by name, files written, unknown names refused with the choices."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from keelwork.service.projects import TEMPLATES, template_named
from keelwork.spec import load_spec

runner = CliRunner()


@pytest.mark.parametrize(("name", "model"), [("text", "sentiment"), ("sentiment", "sentiment"),
                                             ("tabular", "credit")])
def test_init_without_training_writes_a_valid_project(tmp_path: Path, name: str,
                                                      model: str) -> None:
    r = runner.invoke(app, ["init", str(tmp_path / "p"), "--template", name, "--no-train"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"keel.yaml", "train.py",
                                                            ".gitignore"}
    assert load_spec(tmp_path / "p" / "keel.yaml").spec.models[0].name == model
    assert template_named(name).model == model


def test_an_unknown_template_is_refused_with_the_choices(tmp_path: Path) -> None:
    r = runner.invoke(app, ["init", str(tmp_path / "p"), "--template", "images"])
    assert r.exit_code == 2
    assert "--template must be one of text, tabular; got 'images'" in r.output
    assert not (tmp_path / "p").exists()
    assert set(TEMPLATES) == {"text", "tabular"}


def test_init_does_not_overwrite_a_project(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path), "--template", "tabular", "--no-train"])
    r = runner.invoke(app, ["init", str(tmp_path), "--template", "text", "--no-train"])
    assert r.exit_code == 2 and "already exists; pass --force" in r.output
    assert "credit" in (tmp_path / "keel.yaml").read_text()
