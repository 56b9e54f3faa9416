"""What one batched gateway call costs: CPU per instance against the batch size, per thread.

The granian and Mosec engines hand keelwork a batch of admitted requests per gateway call
(:class:`keelwork.service.batch_predict.BatchPredictor`). This runs that path in-process, with
no HTTP, on ``serving.py``'s project (30-feature LogisticRegression, the 30-field float
contract, the durable SQLite log with ``durability: sync``, metrics): per batch, each request's
body is parsed and admitted alone (``BatchPredictor.admit``: the contract check), then the batch
is predicted, logged and counted in one call and each answer rendered. One batch at a time, so
each call pays its own log commit.

Printed per batch size: CPU microseconds per instance, for the whole process and per thread
(the event loop's, the prediction log's writer, the model's pool), read from
``/proc/self/task``; then the fit ``per call / B + per instance``, which says what batching
buys: the live engine's batches at c=64 hold about 16 requests (counted from its log: rows per
distinct timestamp).

No competitor runs here: this is a cost model for benchmarks/serving.py's numbers, as
``serving_profile.py`` is a profile of them. Run (about a minute)::

    python benchmarks/serving_batch_cost.py
    python benchmarks/serving_batch_cost.py --batch-sizes 1,16,64 --instances 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import serving
from rich.progress import Progress


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each thread of this process, by thread name."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        tid = task.name
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat.rsplit(")", 1)[1].split()
        name = names.get(tid, f"thread {tid}")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-sizes", default="1,4,16,64", help="batch sizes (1,4,16,64)")
    ap.add_argument("--instances", type=int, default=24_000,
                    help="instances measured per batch size (24000)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.batch_sizes.split(",")]

    from keelwork.interfaces.http.batch_answers import parse, render
    from keelwork.service.granian_serving import open_batch_server
    from keelwork.spec import load_spec
    from keelwork.spec.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="keel-batch-cost-"))
    here = Path.cwd()
    try:
        model, instance, _label, x = serving.train_model(work)
        spec_path = serving.write_project(work / "project", model, x, batching=True)
        os.chdir(work / "project")
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = open_batch_server(load_spec(spec_path), load_settings(), loop)
        predictor = server.queues["bench"].predictor
        body = orjson.dumps({"instances": [instance]})

        async def one_batch(size: int) -> None:
            admitted = []
            for _ in range(size):
                instances, probabilities = parse(body)
                admitted.append(await predictor.admit(instances, probabilities))
            for answer in await predictor.predict(admitted):
                render(answer)

        async def batches(size: int, count: int) -> None:
            for _ in range(count):
                await one_batch(size)

        rows: list[tuple[int, float, dict[str, float]]] = []
        with Progress() as progress:
            task = progress.add_task("batch sizes", total=len(sizes))
            for size in sizes:
                count = max(1, args.instances // size)
                loop.run_until_complete(batches(size, max(1, count // 10)))  # warm-up
                before, started = thread_cpu(), time.process_time()
                loop.run_until_complete(batches(size, count))
                total = (time.process_time() - started) / (count * size) * 1e6
                after = thread_cpu()
                per_thread = {k: (v - before.get(k, 0.0)) / (count * size) * 1e6
                              for k, v in after.items() if v - before.get(k, 0.0) > 0}
                rows.append((size, total, per_thread))
                progress.advance(task)
        loop.run_until_complete(server.parts.close())
        loop.close()
    finally:
        os.chdir(here)
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {serving.machine_facts()}")
    print(f"\n{'batch':>5} {'CPU us/instance':>16}  per thread (us/instance)")
    for size, total, per_thread in rows:
        threads = ", ".join(f"{k} {v:.1f}" for k, v in
                            sorted(per_thread.items(), key=lambda kv: -kv[1]) if v >= 0.5)
        print(f"{size:>5} {total:>16.1f}  {threads}")
    if len(rows) >= 2:  # least squares of cost = a / B + b over the sizes measured
        xs = [1.0 / s for s, _, _ in rows]
        ys = [t for _, t, _ in rows]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        a = sum((u - mx) * (v - my) for u, v in zip(xs, ys, strict=True)) / sum(
            (u - mx) ** 2 for u in xs)
        b = my - a * mx
        print(f"\nfit: about {a:.0f} us per gateway call + {b:.1f} us per instance "
              f"(at 16 a batch: {a / 16 + b:.0f} us/instance; at 64: {a / 64 + b:.0f})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
