"""The README's examples are real: its keel.yaml tour validates, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app
from keelwork.spec import parse_spec

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_keel_yaml_tour_is_a_valid_spec() -> None:
    block = re.search(r"```yaml\n(.*?)```", README, re.S)
    assert block is not None
    spec = parse_spec(block.group(1), env={})
    assert spec.models[0].runtime == "sklearn"
    assert spec.features.transforms[0].fn == "text_length"


def test_every_command_in_the_table_exists() -> None:
    commands = set(re.findall(r"^\| `keel ([a-z]+)(?: ([a-z]+))?", README, re.M))
    assert len(commands) >= 10
    runner = CliRunner()
    for top, sub in commands:
        args = [top, sub, "--help"] if sub and not sub.startswith("-") else [top, "--help"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
