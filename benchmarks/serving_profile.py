"""Where a served request's CPU goes: ``keel serve`` (batching on) under ``wrk``, sampled by py-spy.

The project and body are ``serving.py``'s (30-feature LogisticRegression, the 30-field float
contract, the durable log with ``durability: sync``, metrics). The server is pinned to one CPU
and ``wrk`` to another, as in ``serving.py``; ``py-spy record --format raw`` samples every
thread of the server while ``wrk`` keeps ``--concurrency`` connections busy. Each sample is put
in the first bucket (below) that its innermost frame falls in, so the shares add up to 100%;
multiplied by the CPU time per answered request (read from /proc over the same window) they
give microseconds per request.

py-spy's idle filter misses threads blocked in ``queue.get`` or ``Condition.wait`` (the
executor's idle workers, the log writer between commits): those samples (:data:`WAITS`) are
counted apart and left out of the shares. It still counts a thread waiting for the GIL as
busy, so the ``thread hand-offs`` bucket (executor submit, the condition's notify) is the cost
of crossing threads, GIL waits included, not pure computation. Async stacks are cut at each
``await``, so only the innermost frame is trusted.

Run (about a minute; needs ``wrk`` and ``py-spy``)::

    python benchmarks/serving_profile.py
    python benchmarks/serving_profile.py --seconds 30 --top 40
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serving

#: (bucket, substrings of the innermost frame's file), first match wins.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("model predict (sklearn, numpy)", ("sklearn/", "numpy/", "scipy/", "threadpoolctl")),
    ("prediction log (SQLAlchemy, sqlite, writer)", ("sqlalchemy/", "sqlite3/",
                                                     "adapters/stores/")),
    ("metrics (prometheus_client)", ("prometheus_client/", "adapters/metrics")),
    ("contract check (core/contracts)", ("core/contracts/",)),
    ("batching hand-off (core/batching)", ("core/batching",)),
    ("prediction ids (core/predictions)", ("core/predictions",)),
    ("keel gateway (service/gateway)", ("service/gateway/", "keelwork/service/")),
    ("keel HTTP layer (parse, guards, render)", ("interfaces/http/", "orjson")),
    ("FastAPI/Starlette middleware and routing", ("fastapi/", "starlette/", "opentelemetry",
                                                  "<frozen os>", "_collections_abc")),
    ("uvicorn HTTP protocol (httptools)", ("uvicorn/",)),
    ("thread hand-offs (executor, condition)", ("concurrent/", "threading.py", "queue.py")),
    ("event loop (uvloop, asyncio)", ("asyncio/", "uvloop", "selectors")),
]
#: Innermost frames where a thread sleeps (a blocking queue get, a condition wait).
WAITS = ("concurrent/futures/thread.py:81)", "threading.py:320)", "threading.py:324)",
         "threading.py:327)", "threading.py:331)", "queue.py:171)", "queue.py:180)")
FRAME = re.compile(r"\((?P<file>[^()]*?):\d+\)$")


def bucket_of(frame: str) -> str:
    if frame.endswith(WAITS):
        return "waiting"
    match = FRAME.search(frame)
    where = match.group("file") if match else frame
    for name, keys in BUCKETS:
        if any(k in where for k in keys):
            return name
    return "other"


def summarise(raw: Path) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """(samples per bucket, samples per innermost frame, all samples) of a py-spy raw file."""
    buckets: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        leaf = stack.split(";")[-1]
        buckets[bucket_of(leaf)] += n
        leaves[leaf] += n
        total += n
    return buckets, leaves, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="sampling seconds (20)")
    ap.add_argument("--concurrency", type=int, default=64, help="wrk connections (64)")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    ap.add_argument("--top", type=int, default=25, help="innermost frames to list (25)")
    ap.add_argument("--server", default="keel-batch-on", choices=("keel-batch-on", "keel-granian"),
                    help="the server profiled (keel-batch-on; keel-granian: `keel serve "
                         "--engine granian`, every process of its tree sampled)")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or str(
        Path(sys.executable).parent / "py-spy"), help="the py-spy binary")
    ap.add_argument("--raw", type=Path, default=None,
                    help="also keep py-spy's raw samples (collapsed stacks) at this path")
    args = ap.parse_args(argv)
    for tool in ("wrk", args.py_spy):
        if shutil.which(tool) is None and not Path(tool).exists():
            print(f"{tool} is not installed", file=sys.stderr)
            return 2

    server_cpu, load_cpu = serving.pin_cpus(True)
    work = Path(tempfile.mkdtemp(prefix="keel-serving-profile-"))
    logs = work / "logs"
    logs.mkdir()
    model, instance, label, x = serving.train_model(work)
    body = json.dumps({"instances": [instance]}).encode()
    (work / "body.json").write_bytes(body)
    script = work / "post.lua"
    script.write_text(serving.LUA.format(body_path=work / "body.json"))
    opts = argparse.Namespace(access_log=False, bentoml_python="", mosec_python="",
                              litserve_python="", keel_baseline_src="",
                              mosec_keel_python=sys.executable)
    server = next(s for s in serving.server_specs(opts, work, model, x)
                  if s.name == args.server)
    raw = work / "profile.txt"
    try:
        with serving.running(server, server_cpu, logs):
            serving.check_answer(server, body, label)
            serving.run_wrk(server.base + serving.PREDICT_PATH, script, 16, 3, load_cpu)
            pid = serving.server_pid(server)
            load = ["wrk", "-t2", f"-c{args.concurrency}", f"-d{args.seconds + 4:g}s",
                    "--latency", "-s", str(script), server.base + serving.PREDICT_PATH]
            if load_cpu is not None:
                load = ["taskset", "-c", load_cpu, *load]
            with subprocess.Popen(load, stdout=subprocess.PIPE, text=True) as wrk:
                time.sleep(1.0)
                cpu0 = serving.tree_cpu_seconds(pid)
                subprocess.run([args.py_spy, "record", "-p", str(pid), "-d",
                                f"{args.seconds:g}", "-r", str(args.rate), "-f", "raw",
                                "-o", str(raw), "--nonblocking", "--subprocesses"],
                               check=True, capture_output=True)
                cpu = serving.tree_cpu_seconds(pid) - cpu0
                out = wrk.communicate()[0]
        summary = next(json.loads(line[len("WRKJSON "):]) for line in out.splitlines()
                       if line.startswith("WRKJSON "))
        rps = summary["requests"] / (summary["duration_us"] / 1e6)
        elapsed = args.seconds  # py-spy's window; CPU read over (about) the same window
        per_request_us = 1e6 * cpu / max(1.0, rps * elapsed)
        buckets, leaves, sampled = summarise(raw)
        if args.raw is not None:
            shutil.copyfile(raw, args.raw)
        waiting = buckets.pop("waiting", 0)
        total = sampled - waiting
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {serving.machine_facts()}")
    print(f"{args.server} at c={args.concurrency}: {rps:.0f} req/s, about "
          f"{per_request_us:.0f} CPU us per request; {sampled} samples, {waiting} of them "
          f"in a blocking wait (left out below)")
    print(f"\n{'share':>6} {'us/req':>7}  bucket (innermost frame)")
    for name, n in buckets.most_common():
        print(f"{100 * n / total:5.1f}% {per_request_us * n / total:7.1f}  {name}")
    print(f"\ninnermost frames (top {args.top}):")
    for leaf, n in [(k, v) for k, v in leaves.most_common() if not k.endswith(WAITS)][:args.top]:
        print(f"{100 * n / total:5.1f}%  {leaf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
