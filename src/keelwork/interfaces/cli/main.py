"""Entry point of the ``keel`` command: sub-commands live in one module each."""

from __future__ import annotations

import typer

from keelwork import __version__
from keelwork.errors import KeelworkError
from keelwork.interfaces.cli import (
    alerts_cmd,
    audit_cmd,
    build_cmd,
    check_cmd,
    contract_cmd,
    cost_cmd,
    dashboard_cmd,
    data_cmd,
    demo_cmd,
    drift_cmd,
    features_cmd,
    flags_cmd,
    ingest_cmd,
    keys_cmd,
    log_cmd,
    models_cmd,
    monitor_cmd,
    project_cmd,
    retention_cmd,
    review_cmd,
    rollout_cmd,
    serve_cmd,
    slo_cmd,
    spec_cmd,
    subject_cmd,
    test_cmd,
    validate_cmd,
)
from keelwork.interfaces.cli.output import fail, start_settings

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
app.add_typer(data_cmd.app, name="data")
app.add_typer(contract_cmd.app, name="contract")
app.add_typer(features_cmd.app, name="features")
app.add_typer(flags_cmd.app, name="flags")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(rollout_cmd.app, name="rollout")
app.add_typer(alerts_cmd.app, name="alerts")
app.add_typer(dashboard_cmd.app, name="dashboard")
app.add_typer(cost_cmd.app, name="cost")
app.add_typer(retention_cmd.app, name="retention")
app.add_typer(review_cmd.app, name="review")
app.command("rollback")(rollout_cmd.rollback)
validate_cmd.register(app)
ingest_cmd.register(app)
drift_cmd.register(app)
project_cmd.register(app)
demo_cmd.register(app)
serve_cmd.register(app)
slo_cmd.register(app)
subject_cmd.register(app)
check_cmd.register(app)
test_cmd.register(app)
build_cmd.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", callback=_print_version,
                                 is_eager=True, help="Print the keelwork version and exit."),
) -> None:
    """keelwork: a trained model plus keel.yaml becomes a production service."""
    # The settings (KEELWORK_* variables) are read and checked once, here; commands take them
    # (output.current_settings) and pass them down to the use-cases.
    try:
        start_settings(ctx)
    except KeelworkError as exc:
        raise fail(exc.message) from None


@app.command("version")
def version_cmd() -> None:
    """Print the keelwork version."""
    typer.echo(__version__)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
