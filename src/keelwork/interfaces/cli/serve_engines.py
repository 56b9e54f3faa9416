"""``keel serve --engine mosec|granian``: a Rust HTTP front serves each model's KServe V1
``:predict`` on the port, with every guard of the predict path, a batch at a time
(:mod:`keelwork.service.mosec_serving`, :mod:`keelwork.service.granian_serving`); keelwork's
whole app serves everything else on the admin port (default: the port + 1), a child of the same
process tree.

:func:`mosec_handler` is the factory each of Mosec's worker processes calls (by its import
path); granian's worker imports :data:`keelwork.interfaces.http.rsgi_app.app`. Both build their
server from what ``keel serve`` handed down, as
:func:`keelwork.interfaces.cli.serve_app.worker_app` does for ``--workers``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from keelwork.interfaces.cli.output import configure_logging, console, err_console
from keelwork.interfaces.http.batch_answers import BatchAnswers
from keelwork.spec.settings import worker_handoff

#: The handler factory, as Mosec's workers import it.
HANDLER = "keelwork.interfaces.cli.serve_engines:mosec_handler"
#: The RSGI app, as granian's worker imports it.
RSGI_APP = "keelwork.interfaces.http.rsgi_app:app"


def serve_on_engine(engine: str, spec: Path, *, host: str | None, port: int | None,
                    admin_port: int | None, log_level: str, access_log: bool,
                    preflight: Callable[[], None]) -> None:
    """Check, start and stop one server here (``preflight``), then run ``engine`` (mosec or
    granian) until SIGINT/SIGTERM."""
    from keelwork.interfaces.cli.serve_app import handoff
    from keelwork.service.budget import announce_budget
    from keelwork.service.serving import connection_bound, fleet_metrics_dir
    from keelwork.service.slos import announce_slos
    from keelwork.spec import load_spec
    from keelwork.spec.settings import child_environment, hand_to_workers, share_metrics

    resolved = load_spec(spec)
    h = host or resolved.spec.server.host
    p = resolved.spec.server.port if port is None else port
    admin = p + 1 if admin_port is None else admin_port
    if engine == "mosec":
        from keelwork.service.mosec_serving import check_mosec

        check_mosec(resolved, port=p, admin_port=admin)
    else:
        from keelwork.service.granian_serving import check_granian

        check_granian(resolved, port=p, admin_port=admin)
    # the open-file limit raised here holds for the front and the admin app (its children)
    connections, note = connection_bound(resolved.spec.guards)
    if note is not None:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    if any(m.batching.enabled and "max_wait_ms" in m.batching.model_fields_set
           for m in resolved.spec.models):
        err_console.print(f"[yellow]note:[/] batching.max_wait_ms is for `keel serve`; the "
                          f"{engine} engine never waits: each batch is what is queued when the "
                          "model is free.", highlight=False)
    if engine == "mosec":
        err_console.print("[yellow]note:[/] Mosec's workers never see a request's headers: on "
                          f"port {p} a prediction is recorded without the tenant header and "
                          "x-subject-id (erasure by subject finds it only through the "
                          "contract's subject field), and x-keel-user and model flags' header "
                          f"rules do not apply; keelwork's app on port {admin} reads them all.",
                          highlight=False)
        err_console.print("[yellow]note:[/] Mosec's front has no read deadlines and no "
                          f"bound on connections: on port {p}, the default "
                          "guards.header_read_timeout_s, guards.body_read_timeout_s and "
                          "guards.max_connections do not apply (a client may hold connections "
                          f"open); they apply on port {admin}. Put a proxy with read deadlines "
                          "and a connection limit in front, or use --engine granian.",
                          highlight=False)
    configure_logging(log_level, access_log)
    preflight()
    shared = fleet_metrics_dir(resolved)
    share_metrics(str(shared))  # every process of the tree counts into one folder
    hand_to_workers(handoff(spec, log_level, access_log, metrics_dir=shared))
    env = child_environment()
    app = [sys.executable, "-m", "keelwork.interfaces.cli.serve_app", h, str(admin),
           log_level.lower()]
    announce_slos(resolved.spec)
    announce_budget(resolved.spec)
    models = ", ".join(m.name for m in resolved.spec.models)
    console.print(f"serving [bold]{resolved.spec.service.name}[/] on http://{h}:{p} ({engine}: "
                  f"V1 predict of {models}), the rest on http://{h}:{admin} (health, V2, "
                  f"metrics: http://{h}:{admin}/metrics, admin)")
    if engine == "mosec":
        from keelwork.service.mosec_serving import mosec_config, serve_mosec, work_dir

        serve_mosec(mosec_config(resolved, host=h, port=p, handler=HANDLER,
                                 work_dir=work_dir(), env={}), app, env)
    else:
        from keelwork.service.granian_serving import granian_config, serve_granian

        serve_granian(granian_config(resolved, host=h, port=p, target=RSGI_APP,
                                     log_level=log_level, max_connections=connections),
                      app, env)
    console.print("stopped")


def mosec_handler(model: str) -> BatchAnswers:
    """The handler of one of Mosec's worker processes, serving ``model``.

    Raises:
        RuntimeError: not started by ``keel serve --engine mosec`` (no hand-off).
    """
    from keelwork.service.mosec_serving import BatchWorker
    from keelwork.spec import load_spec
    from keelwork.spec.settings import load_settings

    raw = worker_handoff()
    if not raw:
        raise RuntimeError("this factory is for the workers `keel serve --engine mosec` starts.")
    options = json.loads(raw)
    configure_logging(str(options["log_level"]), bool(options["access_log"]))
    worker = BatchWorker(load_spec(Path(options["spec"])), load_settings(), model)
    return BatchAnswers(worker, model)


__all__ = ["HANDLER", "RSGI_APP", "mosec_handler", "serve_on_engine"]
