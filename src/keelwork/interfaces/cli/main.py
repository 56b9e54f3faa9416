"""Entry point of the ``keel`` command: sub-commands live in one module each."""

from __future__ import annotations

import typer

from keelwork import __version__
from keelwork.interfaces.cli import log_cmd, models_cmd, project_cmd, serve_cmd, spec_cmd

app = typer.Typer(
    name="keel",
    help="keelwork: a trained model plus keel.yaml becomes a production service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(spec_cmd.app, name="spec")
app.add_typer(models_cmd.app, name="models")
app.add_typer(log_cmd.app, name="log")
project_cmd.register(app)
serve_cmd.register(app)


@app.command("version")
def version_cmd() -> None:
    """Print the keelwork version."""
    typer.echo(__version__)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
