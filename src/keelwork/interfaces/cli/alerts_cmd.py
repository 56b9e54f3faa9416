"""``keel alerts``: the Alertmanager configuration that delivers keel.yaml's alerts."""

from __future__ import annotations

from pathlib import Path

import typer

from keelwork.interfaces.cli.output import console, handles_errors

#: Alertmanager's own defaults (``keelwork.core.alerting.alertmanager``; not imported here:
#: the CLI's start-up stays light).
_GROUP_WAIT, _GROUP_INTERVAL = "30s", "5m"


def _duration(value: str) -> str:
    import re

    if not re.match(r"^[1-9]\d*(ms|s|m|h)$", value):
        raise typer.BadParameter(f"must be a whole number and ms, s, m or h (e.g. 30s); got "
                                 f"{value!r}")
    return value

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
    group_wait: str = typer.Option(_GROUP_WAIT, "--group-wait", callback=_duration,
                                   help="How long a new alert group waits for more alerts "
                                   "before its first notification."),
    group_interval: str = typer.Option(_GROUP_INTERVAL, "--group-interval", callback=_duration,
                                       help="How long a group waits between notifications "
                                       "(a resolved notice included)."),
) -> None:
    """Generate an Alertmanager configuration from keel.yaml: routes by service, severity
    (page: service.on_call.contact; ticket: service.owners) and owner, receivers for e-mail,
    webhooks and Slack-compatible endpoints, and inhibit rules (one page per incident)."""
    from keelwork.service.alerting import alertmanager_yaml, write_alertmanager_config
    from keelwork.spec import load_spec

    resolved = load_spec(spec)
    if out is None:
        typer.echo(alertmanager_yaml(resolved.spec, hide_secrets=True, group_wait=group_wait,
                                     group_interval=group_interval), nl=False)
        return
    done = write_alertmanager_config(resolved.spec, out, group_wait=group_wait,
                                     group_interval=group_interval)
    console.print(f"wrote {done.path}: {len(done.receivers)} receiver(s) "
                  f"({', '.join(done.receivers)}), {done.routes} route(s); check it with "
                  f"`amtool check-config {done.path}`", highlight=False, soft_wrap=True)
