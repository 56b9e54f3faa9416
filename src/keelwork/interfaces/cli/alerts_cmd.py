"""``keel alerts``: the Alertmanager configuration that delivers keel.yaml's alerts, the
alerts firing now, their acknowledgement (which stops an escalation), and a test notification
to every alert target."""

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


_PROJECT = typer.Option(Path(), "--project", "-p",
                        help="Project directory (holds keel.yaml and .keel/).")


@app.command("list")
@handles_errors
def list_cmd(project: Path = _PROJECT,
             as_json: bool = typer.Option(False, "--json", help="One JSON object per alert."),
             ) -> None:
    """The alerts firing now (those keelwork delivers itself), with who acknowledged each."""
    import json
    from datetime import UTC, datetime

    from keelwork.interfaces.cli.output import current_settings
    from keelwork.service.alerting import open_alerts
    from keelwork.service.projects import project_spec

    alerts = open_alerts(project_spec(project, current_settings()))
    if as_json:
        for a in alerts:
            typer.echo(json.dumps(a))
        return
    if not alerts:
        console.print("no alert is firing", highlight=False)
    for a in alerts:
        since = datetime.fromtimestamp(a["since"], UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        ack = a["acknowledged"]
        said = f"acknowledged by {ack['by']}" if ack else "not acknowledged"
        console.print(f"{a['fingerprint']}  {a['severity']:<6} {a['alertname']}  since "
                      f"{since}  -> {', '.join(a['receivers'])}  ({said})", highlight=False,
                      markup=False, soft_wrap=True)


@app.command("ack")
@handles_errors
def ack_cmd(fingerprint: str = typer.Argument(..., help="The alert (see keel alerts list)."),
            project: Path = _PROJECT,
            by: str | None = typer.Option(None, "--by", help="Who acknowledges (default: the "
                                          "user setting, else the OS user)."),
            ) -> None:
    """Acknowledge a firing alert: its page is not escalated to
    service.on_call.escalation (this firing of it)."""
    from keelwork.interfaces.cli.output import current_settings
    from keelwork.service.alerting import acknowledge
    from keelwork.service.projects import actor, project_spec

    settings = current_settings()
    who = actor(by, settings)
    if not acknowledge(project_spec(project, settings), fingerprint, who):
        console.print(f"no alert {fingerprint!r} is known (see keel alerts list)",
                      highlight=False, markup=False)
        raise typer.Exit(1)
    console.print(f"acknowledged {fingerprint} as {who}", highlight=False, markup=False)


@app.command("test")
@handles_errors
def test_cmd(project: Path = _PROJECT,
             as_json: bool = typer.Option(False, "--json", help="The targets as JSON."),
             ) -> None:
    """Send a test notification (then its resolution) to every target the alerts are routed
    to: the owners, the on-call contact, the escalation. Exit 1 when a target did not
    acknowledge it. URLs are never shown (they may carry a token)."""
    import json

    from keelwork.interfaces.cli.output import current_settings
    from keelwork.service.alerting import send_test_notifications
    from keelwork.service.projects import project_spec

    probes = send_test_notifications(project_spec(project, current_settings()).spec)
    if as_json:
        typer.echo(json.dumps([p.as_dict() for p in probes], indent=2))
    else:
        for p in probes:
            said = f"acknowledged in {p.ms:.0f} ms" if p.ok else f"FAILED: {p.error}"
            console.print(f"{p.target} ({', '.join(p.receivers)}): {said}", highlight=False,
                          markup=False, soft_wrap=True)
    if any(not p.ok for p in probes):
        raise typer.Exit(1)
