"""Entry point of the ``keel`` command: sub-commands live in one module each."""

from __future__ import annotations

import typer

from keelwork import __version__
from keelwork.interfaces.cli import spec_cmd

app = typer.Typer(
    name="keel",
    help="keelwork: a trained model plus keel.yaml becomes a production service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(spec_cmd.app, name="spec")


def _register_optional() -> None:
    """Sub-commands added by later modules; each module owns its commands."""
    import importlib

    for mod, name in (
        ("keelwork.interfaces.cli.models_cmd", "models"),
    ):
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        if name:
            app.add_typer(module.app, name=name)
        else:
            module.register(app)


@app.command("version")
def version_cmd() -> None:
    """Print the keelwork version."""
    typer.echo(__version__)


_register_optional()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
