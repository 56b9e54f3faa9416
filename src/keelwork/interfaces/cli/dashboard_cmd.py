"""``keel dashboard``: dashboards outside the server (``keel serve`` serves ``/dashboard``)."""

from __future__ import annotations

from pathlib import Path

import typer

from keelwork.interfaces.cli.output import console, handles_errors

app = typer.Typer(help="Dashboards: a Grafana dashboard generated from keel.yaml.",
                  no_args_is_help=True)


@app.command("grafana")
@handles_errors
def grafana_cmd(
    spec: Path = typer.Option(Path("keel.yaml"), "--spec", "-s",
                              help="The keel.yaml (or its directory)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the dashboard JSON here; "
                                    "without it, print it."),
) -> None:
    """Generate a Grafana dashboard from keel.yaml: per model, traffic, errors, latency
    quantiles (from the request duration histogram), the SLOs' burn rates (from the recording
    rules of `keel slo rules`) and cost. Import it in Grafana with a Prometheus data source."""
    from keelwork.service.grafana import grafana_json, write_grafana
    from keelwork.spec import load_spec

    resolved = load_spec(spec)
    if out is None:
        typer.echo(grafana_json(resolved.spec), nl=False)
        return
    done = write_grafana(resolved.spec, out)
    console.print(f"wrote {done['path']}: {done['panels']} panel(s), {done['expressions']} "
                  "PromQL expression(s); import it in Grafana (Dashboards > Import) and pick "
                  "the Prometheus data source", highlight=False, soft_wrap=True)
