"""The top-level ``keel`` command: ``--version`` beside the ``version`` sub-command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from keelwork import __version__
from keelwork.interfaces.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["version"]])
def test_version_prints_the_package_version(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_version_wins_over_a_subcommand_and_runs_nothing_else() -> None:
    result = runner.invoke(app, ["--version", "serve", "/no/such/keel.yaml"])
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_the_installed_entry_point_answers_version() -> None:
    done = subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == __version__
    assert "--version" in runner.invoke(app, ["--help"]).output


def test_settings_are_checked_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELWORK_JIT", "sometimes")
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 2 and "KEELWORK_JIT" in result.output
    assert "'sometimes'" in result.output


def test_an_old_variable_name_works_and_says_the_new_one_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEELWORK_JIT", raising=False)
    monkeypatch.setenv("KEEL_JIT", "off")
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and __version__ in result.output
    assert result.output.count("KEEL_JIT is deprecated; set KEELWORK_JIT instead") == 1
