"""``keel alerts``: the Alertmanager configuration that delivers keel.yaml's alerts."""

from __future__ import annotations

from pathlib import Path

import typer

from keelwork.interfaces.cli.output import console, handles_errors

app = typer.Typer(help="Alert delivery: pages to the on-call contact, tickets to the owners.",
                  no_args_is_help=True)


@app.command("config")
@handles_errors
def config_cmd(
    spec: Path = typer.Option(Path("keel.yaml"), "--spec", "-s",
                              help="The keel.yaml (or its directory)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the configuration here "
                                    "(mode 0600: it holds the receivers' secrets). Without "
                                    "it, print it with the secrets hidden."),
) -> None:
    """Generate an Alertmanager configuration from keel.yaml: routes by service, severity
    (page: service.on_call.contact; ticket: service.owners) and owner, receivers for e-mail,
    webhooks and Slack-compatible endpoints, and inhibit rules (one page per incident)."""
    from keelwork.service.alerting import alertmanager_yaml, write_alertmanager_config
    from keelwork.spec import load_spec

    resolved = load_spec(spec)
    if out is None:
        typer.echo(alertmanager_yaml(resolved.spec, hide_secrets=True), nl=False)
        return
    done = write_alertmanager_config(resolved.spec, out)
    console.print(f"wrote {done.path}: {len(done.receivers)} receiver(s) "
                  f"({', '.join(done.receivers)}), {done.routes} route(s); check it with "
                  f"`amtool check-config {done.path}`", highlight=False, soft_wrap=True)
