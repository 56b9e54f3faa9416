"""``keel serve``: serve the models of a keel.yaml over HTTP (uvicorn).

With ``--workers N`` (or ``server.workers``) above 1, uvicorn binds the port and runs N worker
processes, each a whole server on the keel.yaml's store (:mod:`keelwork.service.serving`); they
build their app through :mod:`keelwork.interfaces.cli.serve_app`, after :func:`preflight` has
started and stopped one in this process.

With ``--engine ray``, Ray Serve replicas (:mod:`keelwork.service.scale_out`) build the same app
through the same factory, after the same preflight; Ray's HTTP proxy serves the port.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from keelwork.interfaces.cli.output import (
    configure_logging,
    console,
    current_settings,
    err_console,
    fail,
    handles_errors,
)

if TYPE_CHECKING:
    from keelwork.spec.settings import Settings


def build_app(spec_path: Path, settings: Settings, *, fleet: bool = False) -> object:
    """The ASGI app for a keel.yaml (stores opened, models loaded at start-up); ``fleet``: one
    of several worker processes (the once-per-fleet loops run under the store's lease)."""
    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    return build_server_app(load_spec(spec_path), settings=settings, fleet=fleet)


def preflight(app: Any) -> None:
    """Start and stop ``app`` once in this process, before its workers start.

    What would stop a lone server (a store it cannot open, a model that does not load) stops
    ``keel serve`` here with its message and exit code 2; in a worker, uvicorn would restart
    the failing process again and again instead. It also creates the store's tables once, before
    N processes race to.
    """
    import asyncio

    async def cycle() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(cycle())


@handles_errors
def serve(
    spec: Path = typer.Argument(Path("keel.yaml"), help="The keel.yaml to serve."),
    host: str | None = typer.Option(None, help="Bind address (default: server.host)."),
    port: int | None = typer.Option(None, help="Port (default: server.port)."),
    log_level: str = typer.Option("info", help="Log level."),
    access_log: bool = typer.Option(True, help="JSON access log line per request."),
    workers: int | None = typer.Option(
        None, help="Server processes sharing the port and the store (default: server.workers)."),
    engine: str = typer.Option(
        "uvicorn", help="uvicorn (one machine), ray (Ray Serve replicas, extra 'ray'), granian "
        "or mosec (a Rust front; V1 predict batched, extra 'granian' or 'mosec')."),
    replicas: int | None = typer.Option(
        None, help="With --engine ray: replicas sharing the store (default: server.replicas)."),
    address: str | None = typer.Option(
        None, help="With --engine ray: an existing Ray cluster (default: start Ray here)."),
    version_deployments: bool | None = typer.Option(
        None, "--version-deployments/--no-version-deployments",
        help="With --engine ray: each model version served by its own Ray Serve deployment, "
        "batched by Ray's @serve.batch (the default); --no-version-deployments: every version "
        "inside each gateway replica."),
    admin_port: int | None = typer.Option(
        None, help="With --engine mosec or granian: the port of keelwork's app (default: "
        "port + 1)."),
) -> None:
    """Serve the models of keel.yaml: KServe V1, Open Inference Protocol, /metrics, /docs."""
    import uvicorn

    from keelwork.service.serving import check_workers
    from keelwork.spec import load_spec

    settings = current_settings()  # checked at start-up: a bad KEELWORK_* variable stops here
    resolved = load_spec(spec)
    if engine not in ("uvicorn", "ray", "mosec", "granian"):
        raise fail(f"--engine must be uvicorn, ray, mosec or granian; got {engine!r}.")
    if version_deployments is not None and engine != "ray":
        raise fail("--version-deployments and --no-version-deployments are for --engine ray.")
    if engine in ("mosec", "granian"):
        if workers is not None or replicas is not None or address is not None:
            raise fail(f"--workers, --replicas and --address are not for --engine {engine}.")
        from keelwork.interfaces.cli.serve_engines import serve_on_engine

        serve_on_engine(engine, spec, host=host, port=port, admin_port=admin_port,
                        log_level=log_level, access_log=access_log,
                        preflight=lambda: preflight(build_app(spec, settings, fleet=True)))
        return
    if admin_port is not None:
        raise fail("--admin-port is for --engine mosec or granian.")
    if engine == "ray":
        if workers is not None:
            raise fail("--workers is for --engine uvicorn; Ray Serve runs --replicas.")
        serve_on_ray(spec, settings, replicas, host=host, port=port, address=address,
                     log_level=log_level, access_log=access_log,
                     version_deployments=version_deployments is not False)
        return
    if address is not None or replicas is not None:
        raise fail("--replicas and --address are for --engine ray.")
    if "replicas" in resolved.spec.server.model_fields_set:
        err_console.print("[yellow]note:[/] server.replicas is for `keel serve --engine ray`; "
                          "this server runs server.workers processes.", highlight=False)
    n = check_workers(resolved, resolved.spec.server.workers if workers is None else workers)
    from keelwork.interfaces.http.head_deadline import apply_connection_guards

    note = apply_connection_guards(resolved.spec.guards)  # (workers: their own)
    if note is not None:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    configure_logging(log_level, access_log)
    h = host or resolved.spec.server.host
    p = resolved.spec.server.port if port is None else port
    app: object
    if n > 1:
        from keelwork.interfaces.cli.serve_app import handoff
        from keelwork.service.serving import fleet_metrics_dir
        from keelwork.spec.settings import hand_to_workers, share_metrics

        preflight(build_app(spec, settings, fleet=True))
        # Each worker keeps its metric values in one folder; a scrape sums them all.
        shared = fleet_metrics_dir(resolved)
        share_metrics(str(shared))
        hand_to_workers(handoff(spec, log_level, access_log, metrics_dir=shared))
        app = "keelwork.interfaces.cli.serve_app:worker_app"
    else:
        app = build_app(spec, settings)
    processes = f", {n} worker processes" if n > 1 else ""
    console.print(f"serving [bold]{resolved.spec.service.name}[/] on http://{h}:{p}{processes} "
                  f"(docs: http://{h}:{p}/docs, metrics: http://{h}:{p}/metrics)")
    from keelwork.service.budget import announce_budget
    from keelwork.service.slos import announce_slos

    announce_slos(resolved.spec)
    announce_budget(resolved.spec)
    from keelwork.interfaces.http.head_deadline import head_deadline_protocol

    uvicorn.run(app, host=h, port=p, log_level=log_level.lower(), access_log=False,  # type: ignore[arg-type]
                lifespan="on", timeout_graceful_shutdown=10,
                workers=n if n > 1 else None, factory=n > 1, http=head_deadline_protocol())


def serve_on_ray(spec: Path, settings: Settings, replicas: int | None, *, host: str | None,
                 port: int | None, address: str | None, log_level: str,
                 access_log: bool, version_deployments: bool = True) -> None:
    """``keel serve --engine ray``: check, start and stop one server here, then run the
    replicas until SIGINT/SIGTERM (``version_deployments``: each model version in a Serve
    deployment of its own; else inside each gateway replica)."""
    from keelwork.interfaces.cli.serve_app import handoff, worker_app
    from keelwork.service.scale_out import (
        check_replicas,
        replica_bounds,
        replica_env,
        serve_replicas,
    )
    from keelwork.service.serving import fleet_metrics_dir
    from keelwork.spec import load_spec

    resolved = load_spec(spec)
    for field in ("header_read_timeout_s", "max_connections"):
        if field in resolved.spec.guards.model_fields_set:
            raise fail(f"guards.{field} cannot be enforced on --engine ray: Ray Serve's HTTP "
                       "proxy holds the client connections, with no deadline for a request "
                       "head and no bound on connections. Remove it, or serve with `keel "
                       "serve` (uvicorn) or --engine granian.")
    n, most, said = replica_bounds(resolved, replicas)
    check_replicas(resolved, most, address=address, field=said)
    if "workers" in resolved.spec.server.model_fields_set:
        err_console.print("[yellow]note:[/] server.workers is for `keel serve`'s own "
                          "processes; Ray Serve runs server.replicas.", highlight=False)
    err_console.print("[yellow]note:[/] Ray Serve's HTTP proxy holds the client connections: "
                      "the default guards.header_read_timeout_s and guards.max_connections do "
                      "not apply to them (bodies are still read within "
                      "guards.body_read_timeout_s). Put a proxy with read deadlines and a "
                      "connection limit in front.", highlight=False)
    configure_logging(log_level, access_log)
    h = host or resolved.spec.server.host
    p = resolved.spec.server.port if port is None else port
    preflight(build_app(spec, settings, fleet=True))
    shared = fleet_metrics_dir(resolved) if address is None else None
    env = replica_env(handoff(spec, log_level, access_log, metrics_dir=shared,
                              version_deployments=version_deployments),
                      metrics_dir=shared, address=address)
    from keelwork.service.budget import announce_budget
    from keelwork.service.slos import announce_slos

    announce_slos(resolved.spec)
    announce_budget(resolved.spec)
    where = address or "a Ray started here"
    count = f"{n} to {most}" if most > n else str(n)
    console.print(f"starting {count} Ray Serve replicas of "
                  f"[bold]{resolved.spec.service.name}[/] on {where}")
    serve_replicas(worker_app, resolved, n, host=h, port=p, env=env, address=address,
                   most=most, version_deployments=version_deployments,
                   on_ready=lambda: console.print(
                       f"serving [bold]{resolved.spec.service.name}[/] on http://{h}:{p}, "
                       f"{count} Ray Serve replicas (metrics: http://{h}:{p}/metrics)"))
    console.print("stopped")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
