"""Serving throughput and latency: keelwork against bare FastAPI, BentoML, Mosec and LitServe.

The model is a scikit-learn LogisticRegression on 30 features (``make_classification``, fixed
seed), saved with skops. Every server gets the same one-instance KServe V1 body
``{"instances": [[...30 floats...]]}`` and answers ``{"predictions": [...]}``:

- ``fastapi-def`` / ``fastapi-async``: ``serving_fastapi_app.py``, a bare FastAPI endpoint
  (``def`` and ``async def``); per concurrency level, the faster of the two is the baseline;
- ``bentoml``: ``serving_bentoml_service.py``, run from a venv of its own
  (``--bentoml-python``; skipped with the reason printed when it is absent);
- ``mosec``: ``serving_mosec_service.py``, Mosec (Rust HTTP front, one Python worker process)
  with dynamic batching 64 / 2 ms, from a venv of its own (``--mosec-python``; skipped likewise);
- ``litserve-batch-on`` / ``litserve-batch-off``: ``serving_litserve_service.py``, LitServe
  with batching 64 / 2 ms and without, from a venv of its own (``--litserve-python``);
- ``keel-batch-off`` / ``keel-batch-on``: ``keel serve`` on a keel.yaml with a 30-field float
  contract with ranges (validated on every request), the durable prediction log with
  ``durability: sync`` (the answer waits for the commit to SQLite) and Prometheus metrics,
  micro-batching off and on;
- ``keel-mosec`` / ``keel-granian`` (named in ``--servers``; issue 19): ``keel serve --engine
  mosec`` / ``--engine granian`` on the same keel.yaml (batching on): a Rust front, each request
  checked alone, the model, the log (sync) and the metrics once per batch; run from
  ``--mosec-keel-python``, a python with keelwork's dependencies and the extras ``mosec`` and
  ``granian`` (keelwork itself from this process's ``PYTHONPATH``). Their CPU is the whole
  process tree's, keelwork's app on the admin port included.

Each server is a subprocess with ONE uvicorn worker on a free loopback port; access logs are off
for all of them (``--access-log`` turns them on for all). On a machine with two or more CPUs the
servers are pinned to one CPU and ``wrk`` to another (``taskset``), so every server gets the
same single core. All servers start first: each answer is checked against the model's own
prediction, and each server is warmed up. Then they take turns, level by level, for
``--rounds`` rounds: ``wrk`` (closed loop: each connection sends its next request when the
answer comes) POSTs the body for ``--duration`` seconds, a Lua ``done()`` hook reports requests,
errors and latency percentiles, and the server's CPU time per answered request is read from
/proc. On a shared machine a busy minute then hurts every server alike; the table shows the
median of each number over the rounds. A soak then keeps ``keel-batch-on`` at concurrency 64
for ``--soak`` seconds and checks that its resident memory after warm-up grows by less than
5%; the prediction log of each keel server must hold a row per answer ``wrk`` counted.

Run (about 9 minutes with the defaults)::

    python benchmarks/serving.py
    python benchmarks/serving.py --servers keel-batch-on --concurrency 64 --rounds 1 --soak 600
    python benchmarks/serving.py --servers fastapi-async,keel-batch-off --rounds 1 --soak 0
    python benchmarks/serving.py --servers keel-batch-on,keel-workers-2 --no-pin --soak 0

``KEEL_BENCH_BENTOML_PYTHON`` (or ``--bentoml-python``) names the BentoML venv's python; the
default is ``/work/bench-venvs/bentoml/bin/python``; likewise ``KEEL_BENCH_MOSEC_PYTHON`` and
``KEEL_BENCH_LITSERVE_PYTHON`` (``/work/bench-venvs/mosec``, ``/work/bench-venvs/litserve``).
Every server is also sent a malformed body (one instance of 2 features): the table under the
results prints what each answers (keelwork: 422 naming the problem; the others: their 500).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N_FEATURES = 30
SEED = 20240611
PREDICT_PATH = "/v1/models/bench:predict"
DEFAULT_BENTOML_PYTHON = "/work/bench-venvs/bentoml/bin/python"
DEFAULT_MOSEC_PYTHON = "/work/bench-venvs/mosec/bin/python"
DEFAULT_LITSERVE_PYTHON = "/work/bench-venvs/litserve/bin/python"
ALL_SERVERS = ("fastapi-def", "fastapi-async", "bentoml", "mosec", "litserve-batch-on",
               "litserve-batch-off", "keel-batch-off", "keel-batch-on")
#: The servers that run from a venv of their own: name -> (argparse dest, what to install).
VENV_SERVERS = {"bentoml": "bentoml_python", "mosec": "mosec_python",
                "mosec-keel": "mosec_keel_python", "keel-mosec": "mosec_keel_python",
                "keel-granian": "mosec_keel_python", "keel-base-granian": "mosec_keel_python",
                "litserve-batch-on": "litserve_python", "litserve-batch-off": "litserve_python"}
MALFORMED_BODY = b'{"instances": [[1.0, 2.0]]}'
#: Servers run only when named in ``--servers``: ``keel serve --workers 2`` (batching on) needs
#: the machine's CPUs, so it is measured with ``--no-pin`` beside ``keel-batch-on``.
OPTIONAL_SERVERS = ("keel-workers-2", "keel-base-batch-on", "mosec-keel", "keel-mosec",
                    "keel-granian", "keel-base-granian")
DEFAULT_MOSEC_KEEL_PYTHON = "/work/bench-venvs/keel-mosec/bin/python"
SOAK_SERVER = "keel-batch-on"
RSS_GROWTH_LIMIT = 0.05

LUA = """
local f = assert(io.open([==[{body_path}]==], "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d, ' ..
    '"mean": %.1f, "max": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
"""


# --------------------------------------------------------------------------- the model
def train_model(directory: Path) -> tuple[Path, list[float], Any, Any]:
    """Fit and save the model; return (path, one instance, its label, the training data)."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=5000, n_features=N_FEATURES, n_informative=12,
                               random_state=SEED)
    model = LogisticRegression(max_iter=2000).fit(x, y)
    path = directory / "model.skops"
    sio.dump(model, path)
    instance = [round(float(v), 6) for v in x[0]]
    label = model.predict(np.asarray([instance]))[0].item()
    return path, instance, label, x


def write_project(directory: Path, model: Path, x: Any, *, batching: bool) -> Path:
    """A keelwork project: the model and a keel.yaml with a 30-field float contract."""
    directory.mkdir(parents=True)
    shutil.copy(model, directory / "model.skops")
    lo, hi = x.min(axis=0), x.max(axis=0)
    fields = "\n".join(
        f"    - {{name: f{i}, type: float, "
        f"min: {float(lo[i]) - 5:.3f}, max: {float(hi[i]) + 5:.3f}}}"
        for i in range(N_FEATURES))
    spec = f"""kind: keel.yaml
version: 1
service:
  name: serving-bench
  owners: [bench@example.com]
models:
  - name: bench
    runtime: sklearn
    artifact: model.skops
    timeout_ms: 1000
    batching:
      enabled: {str(batching).lower()}
      max_batch_size: 64
      max_wait_ms: 2
contract:
  inputs:
{fields}
  outputs:
    - {{name: label, type: integer}}
guards:
  max_concurrency: 256
storage:
  durability: sync
"""
    path = directory / "keel.yaml"
    path.write_text(spec)
    return path


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    name: str
    argv: list[str]
    health: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    db: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_specs(args: argparse.Namespace, work: Path, model: Path, x: Any) -> list[Server]:
    py = sys.executable
    keel = str(Path(py).parent / "keel")
    access = ["--access-log"] if args.access_log else ["--no-access-log"]
    out: list[Server] = []
    for endpoint in ("def", "async"):
        out.append(Server(
            f"fastapi-{endpoint}",
            [py, "-m", "uvicorn", "serving_fastapi_app:app", "--host", "127.0.0.1",
             "--port", "{port}", "--workers", "1", "--log-level", "warning", *access],
            "/healthz", HERE,
            {"KEEL_BENCH_MODEL": str(model),
             "KEEL_BENCH_ENDPOINT": "sync" if endpoint == "def" else "async"}))
    bento_py = Path(args.bentoml_python)
    out.append(Server(
        "bentoml",
        [str(bento_py), "-m", "bentoml", "serve", "serving_bentoml_service:BenchModel",
         "--host", "127.0.0.1", "--port", "{port}"],
        "/readyz", HERE,
        {"KEEL_BENCH_MODEL": str(model), "KEEL_BENCH_ACCESS_LOG": "1" if args.access_log else "0",
         "BENTOML_DO_NOT_TRACK": "True", "BENTOML_HOME": str(work / "bentoml-home")}))
    out.append(Server(
        "mosec",
        [args.mosec_python, "serving_mosec_service.py", "--address", "127.0.0.1",
         "--port", "{port}", "--log-level", "warning"],
        "/", HERE, {"KEEL_BENCH_MODEL": str(model), "KEEL_BENCH_BATCH": "64"}))
    for batch in ("on", "off"):
        out.append(Server(
            f"litserve-batch-{batch}", [args.litserve_python, "serving_litserve_service.py"],
            "/health", HERE,
            {"KEEL_BENCH_MODEL": str(model), "KEEL_BENCH_PORT": "{port}",
             "KEEL_BENCH_BATCH": "64" if batch == "on" else "1"}))
    for batching in (False, True):
        name = f"keel-batch-{'on' if batching else 'off'}"
        spec = write_project(work / name, model, x, batching=batching)
        out.append(Server(
            name,
            [keel, "serve", str(spec), "--host", "127.0.0.1", "--port", "{port}",
             "--log-level", "warning", *access],
            "/v2/health/ready", work / name, db=work / name / ".keel" / "keel.db"))
    if args.keel_baseline_src:
        # The same keel serve, importing keelwork from another source tree (a "before"
        # checkout): before/after in one interleaved run, on the same core.
        name = "keel-base-batch-on"
        spec = write_project(work / name, model, x, batching=True)
        out.append(Server(
            name,
            [keel, "serve", str(spec), "--host", "127.0.0.1", "--port", "{port}",
             "--log-level", "warning", *access],
            "/v2/health/ready", work / name,
            {"PYTHONPATH": str(Path(args.keel_baseline_src).resolve())},
            db=work / name / ".keel" / "keel.db"))
    # Issue 19's experiment: Mosec's front and batcher, keelwork's guards once per batch (its
    # own micro-batching off: Mosec batches). keelwork comes from this process's PYTHONPATH.
    name = "mosec-keel"
    spec = write_project(work / name, model, x, batching=False)
    out.append(Server(
        name,
        [args.mosec_keel_python, str(HERE / "serving_mosec_keel_service.py"), "--address",
         "127.0.0.1", "--port", "{port}", "--log-level", "warning",
         "--path", str(work / name / "mosec-run")],
        "/", work / name, {"KEEL_BENCH_SPEC": str(spec)}, db=work / name / ".keel" / "keel.db"))
    # Issue 19's engine: `keel serve --engine mosec` (Mosec's front on the port, one request at
    # a time through the contract check, batches through the model and the log; keelwork's
    # app on the admin port). Measured on the whole process tree, admin app included.
    name = "keel-mosec"
    spec = write_project(work / name, model, x, batching=True)
    out.append(Server(
        name,
        [args.mosec_keel_python, "-c", "from keelwork.interfaces.cli.main import run; run()",
         "serve", str(spec), "--engine", "mosec", "--host", "127.0.0.1", "--port", "{port}",
         "--admin-port", str(free_port()), "--log-level", "warning", *access],
        "/", work / name, db=work / name / ".keel" / "keel.db"))
    # The same with granian's Rust front and keelwork's RSGI app: `keel serve --engine granian`.
    name = "keel-granian"
    spec = write_project(work / name, model, x, batching=True)
    out.append(Server(
        name,
        [args.mosec_keel_python, "-c", "from keelwork.interfaces.cli.main import run; run()",
         "serve", str(spec), "--engine", "granian", "--host", "127.0.0.1", "--port", "{port}",
         "--admin-port", str(free_port()), "--log-level", "warning", *access],
        "/", work / name, db=work / name / ".keel" / "keel.db"))
    if args.keel_baseline_src:
        # The granian engine importing keelwork from the "before" tree (its worker process
        # inherits PYTHONPATH): before/after of the engine in one interleaved run.
        name = "keel-base-granian"
        spec = write_project(work / name, model, x, batching=True)
        out.append(Server(
            name,
            [args.mosec_keel_python, "-c", "from keelwork.interfaces.cli.main import run; run()",
             "serve", str(spec), "--engine", "granian", "--host", "127.0.0.1", "--port",
             "{port}", "--admin-port", str(free_port()), "--log-level", "warning", *access],
            "/", work / name, {"PYTHONPATH": str(Path(args.keel_baseline_src).resolve())},
            db=work / name / ".keel" / "keel.db"))
    name = "keel-workers-2"
    spec = write_project(work / name, model, x, batching=True)
    out.append(Server(
        name,
        [keel, "serve", str(spec), "--host", "127.0.0.1", "--port", "{port}",
         "--log-level", "warning", "--workers", "2", *access],
        "/v2/health/ready", work / name, db=work / name / ".keel" / "keel.db"))
    return out


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return int(resp.status)


def start(server: Server, cpu: str | None, logs: Path, timeout: float = 180.0) -> None:
    server.port = free_port()
    argv = [a.replace("{port}", str(server.port)) for a in server.argv]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    server.log_path = logs / f"{server.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           **{k: v.replace("{port}", str(server.port)) for k, v in server.env.items()}}
    with server.log_path.open("wb") as log:
        server.proc = subprocess.Popen(argv, cwd=server.cwd, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode} at start; "
                               f"see {server.log_path}:\n{server.log_path.read_text()[-3000:]}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            if _get(server.base + server.health) == 200:
                return
        time.sleep(0.25)
    stop(server)
    raise RuntimeError(f"{server.name} was not ready within {timeout:.0f} s; see "
                       f"{server.log_path}")


def stop(server: Server) -> None:
    proc = server.proc
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (BentoML serves from a child process)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return total


def server_pid(server: Server) -> int:
    """The server process itself (``taskset`` execs it, so the Popen pid is the server's)."""
    assert server.proc is not None
    return server.proc.pid


def check_answer(server: Server, body: bytes, label: Any) -> None:
    req = urllib.request.Request(server.base + PREDICT_PATH, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        got = json.loads(resp.read())
    if got.get("predictions") != [label]:
        raise RuntimeError(f"{server.name} answered {got!r}; the model says {[label]!r}")


def malformed_answer(server: Server) -> str:
    """What the server answers to one instance of 2 features: status and the body's start."""
    req = urllib.request.Request(server.base + PREDICT_PATH, data=MALFORMED_BODY,
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, text = int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    return f"{status} {' '.join(text.decode(errors='replace').split())[:150]}"


def predictions_logged(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])


# --------------------------------------------------------------------------- load
@dataclass
class Result:
    server: str
    concurrency: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float  # server CPU time (all its threads and processes) per answered request


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all threads) and its descendants, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return total / tick


def run_wrk(url: str, script: Path, concurrency: int, seconds: float,
            cpu: str | None) -> dict[str, Any]:
    threads = min(2, concurrency)
    argv = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency",
            "--timeout", "10s", "-s", str(script), url]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            data: dict[str, Any] = json.loads(line[len("WRKJSON "):])
            return data
    raise RuntimeError(f"wrk printed no summary:\n{out}")


def measure(server: Server, script: Path, concurrency: int, seconds: float,
            cpu: str | None) -> Result:
    pid = server_pid(server)
    cpu0 = tree_cpu_seconds(pid)
    d = run_wrk(server.base + PREDICT_PATH, script, concurrency, seconds, cpu)
    cpu_used = tree_cpu_seconds(pid) - cpu0
    errors = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return Result(server.name, concurrency, d["requests"] / (d["duration_us"] / 1e6),
                  d["p50"] / 1000, d["p90"] / 1000, d["p99"] / 1000, errors, d["requests"],
                  1e6 * cpu_used / max(1, d["requests"]))


def soak(server: Server, script: Path, seconds: float, cpu: str | None) -> dict[str, Any]:
    """Concurrency 64 for ``seconds``, sampling the server's RSS every second."""
    argv = ["wrk", "-t2", "-c64", f"-d{seconds:g}s", "--latency", "--timeout", "10s",
            "-s", str(script), server.base + PREDICT_PATH]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    pid = server_pid(server)
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as wrk:
        while wrk.poll() is None:
            samples.append((time.monotonic() - started, tree_rss_bytes(pid)))
            time.sleep(1.0)
        out = wrk.stdout.read() if wrk.stdout else ""
    summary = next(json.loads(line[len("WRKJSON "):]) for line in out.splitlines()
                   if line.startswith("WRKJSON "))
    warm = max(5.0, 0.1 * seconds)
    after = [rss for t, rss in samples if t >= warm]
    base = after[0] if after else samples[-1][1]
    final = after[-1] if after else samples[-1][1]
    peak = max(after) if after else final
    return {"seconds": seconds, "warmup_s": warm, "rss_base": base, "rss_final": final,
            "rss_peak": peak, "growth": (final - base) / base, "peak_growth": (peak - base) / base,
            "requests": summary["requests"],
            "errors": sum(summary[k] for k in ("connect", "read", "write", "status",
                                               "timeout")),
            "rps": summary["requests"] / (summary["duration_us"] / 1e6),
            "p50_ms": summary["p50"] / 1000, "p99_ms": summary["p99"] / 1000}


def median_result(runs: list[Result]) -> Result:
    """The median of each number over the rounds (errors and requests: the sums)."""
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    return Result(runs[0].server, runs[0].concurrency, med([r.rps for r in runs]),
                  med([r.p50_ms for r in runs]), med([r.p90_ms for r in runs]),
                  med([r.p99_ms for r in runs]), sum(r.errors for r in runs),
                  sum(r.requests for r in runs), med([r.cpu_us for r in runs]))


# --------------------------------------------------------------------------- report
def machine_facts() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def print_table(results: list[Result]) -> None:
    print(f"\n{'server':<16}{'conc':>5}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
          f"{'CPU us/req':>11}{'errors':>7}")
    for r in results:
        print(f"{r.server:<16}{r.concurrency:>5}{r.rps:>9.0f}{r.p50_ms:>8.2f}{r.p90_ms:>8.2f}"
              f"{r.p99_ms:>8.2f}{r.cpu_us:>11.0f}{r.errors:>7}")


def print_ratios(results: list[Result], levels: list[int]) -> list[str]:
    """Print the goals and return the ones missed."""
    by = {(r.server, r.concurrency): r for r in results}
    missed: list[str] = []

    def baseline(c: int) -> Result | None:
        cands = [by[(s, c)] for s in ("fastapi-def", "fastapi-async") if (s, c) in by]
        return max(cands, key=lambda r: r.rps) if cands else None

    print("\nratios (baseline = the faster bare FastAPI endpoint at each level):")
    for c in levels:
        base = baseline(c)
        if base is not None:
            print(f"  c={c}: baseline is {base.server} ({base.rps:.0f} req/s)")
        for name in ("keel-batch-off", "keel-batch-on", "keel-base-batch-on", "mosec-keel",
                     "keel-mosec", "keel-granian", "keel-base-granian"):
            r = by.get((name, c))
            if r is None:
                continue
            parts = []
            if base is not None:
                parts.append(f"{r.rps / base.rps:.2f}x bare FastAPI")
            for other, label in (("bentoml", "BentoML"), ("mosec", "Mosec"),
                                 ("litserve-batch-on", "LitServe batching on")):
                if (other, c) in by:
                    parts.append(f"{r.rps / by[(other, c)].rps:.2f}x {label}")
            print(f"    {name:<15} " + ", ".join(parts))
    if ("bentoml", 64) in by and baseline(64) is not None:
        base64 = baseline(64)
        assert base64 is not None
        print(f"  c=64: bare FastAPI is {base64.rps / by[('bentoml', 64)].rps:.2f}x BentoML")

    print("\ngoals:")

    def goal(text: str, value: float, ok: bool) -> None:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}: {value:.2f}")
        if not ok:
            missed.append(text)

    base64 = baseline(64)
    if base64 is not None and ("keel-batch-off", 64) in by:
        v = by[("keel-batch-off", 64)].rps / base64.rps
        goal("c=64 batching off >= 0.90x bare FastAPI", v, v >= 0.9)
    if base64 is not None and ("keel-batch-on", 64) in by:
        v = by[("keel-batch-on", 64)].rps / base64.rps
        goal("c=64 batching on >= 1.5x bare FastAPI", v, v >= 1.5)
    if ("bentoml", 64) in by:
        for name in ("keel-batch-off", "keel-batch-on"):
            if (name, 64) in by:
                v = by[(name, 64)].rps / by[("bentoml", 64)].rps
                goal(f"c=64 {name} >= 4x BentoML", v, v >= 4.0)
    if ("mosec", 64) in by and ("keel-batch-on", 64) in by:
        k, m = by[("keel-batch-on", 64)], by[("mosec", 64)]
        goal("c=64 keel-batch-on >= 1.0x Mosec (issue 19)", k.rps / m.rps, k.rps >= m.rps)
        goal("c=64 keel-batch-on p99 <= Mosec's (ms)", k.p99_ms, k.p99_ms <= m.p99_ms)
        goal("c=64 keel-batch-on CPU us/request <= 60", k.cpu_us, k.cpu_us <= 60)
    for engine in ("keel-mosec", "keel-granian"):
        if ("mosec", 64) in by and (engine, 64) in by:
            k, m = by[(engine, 64)], by[("mosec", 64)]
            goal(f"c=64 {engine} >= 1.0x Mosec (issue 19)", k.rps / m.rps, k.rps >= m.rps)
            goal(f"c=64 {engine} p99 <= Mosec's (ms)", k.p99_ms, k.p99_ms <= m.p99_ms)
            goal(f"c=64 {engine} CPU us/request <= 60", k.cpu_us, k.cpu_us <= 60)
    base1 = [by[(s, 1)] for s in ("fastapi-def", "fastapi-async") if (s, 1) in by]
    if base1:
        b = min(base1, key=lambda r: r.p50_ms)
        for name in ("keel-batch-off", "keel-batch-on", "keel-base-batch-on", "keel-mosec",
                     "keel-granian", "keel-base-granian"):
            if (name, 1) in by:  # issue 19 asks the engines for 0.5 ms
                bound, why = (0.5, " (issue 19)") if "granian" in name or "mosec" in name \
                    else (1.0, "")
                v = by[(name, 1)].p50_ms - b.p50_ms
                goal(f"c=1 {name} p50 added latency <= {bound:g} ms{why} (ms, vs {b.server})",
                     v, v <= bound)
    return missed


#: (this tree's server, the same server from --keel-baseline-src): compared round by round.
PAIRS = (("keel-granian", "keel-base-granian"), ("keel-batch-on", "keel-base-batch-on"))


def print_paired(runs: dict[tuple[str, int], list[Result]], levels: list[int]) -> None:
    """This tree against the baseline tree, round by round: the two ran in adjacent windows of
    the same round, so a ratio taken within a round cancels what the machine did to both (on a
    shared VM a whole round can run 1.5x slower). Printed: the median over rounds of the
    per-round ratios, and their range."""
    lines = []
    for new, old in PAIRS:
        for c in levels:
            a, b = runs.get((new, c), []), runs.get((old, c), [])
            if not a or len(a) != len(b):
                continue
            rps = sorted(x.rps / y.rps for x, y in zip(a, b, strict=True))
            cpu = sorted(x.cpu_us / y.cpu_us for x, y in zip(a, b, strict=True) if y.cpu_us)
            if not cpu:
                continue
            lines.append(f"  c={c:<3} {new} / {old}: req/s x{statistics.median(rps):.3f} "
                         f"({rps[0]:.2f}-{rps[-1]:.2f}), CPU per request "
                         f"x{statistics.median(cpu):.3f} ({cpu[0]:.2f}-{cpu[-1]:.2f})"
                         f" over {len(a)} rounds")
    if lines:
        print("\nthis tree against the baseline tree, per-round ratios (median, range):")
        print("\n".join(lines))


# --------------------------------------------------------------------------- main
def pin_cpus(enabled: bool) -> tuple[str | None, str | None]:
    """(server CPU, load generator CPU), or (None, None) when not pinning."""
    if not enabled or shutil.which("taskset") is None:
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[-1]), str(cpus[0])


@contextlib.contextmanager
def running(server: Server, cpu: str | None, logs: Path) -> Iterator[Server]:
    """One server for the length of a ``with`` block (for profiling one server by hand)."""
    start(server, cpu, logs)
    try:
        yield server
    finally:
        stop(server)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8.0,
                    help="seconds per server, level and round (8)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; the table shows the median of each number (3)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per server (5)")
    ap.add_argument("--concurrency", default="1,16,64", help="levels (1,16,64)")
    ap.add_argument("--soak", type=float, default=60.0,
                    help="soak seconds at c=64 on keel-batch-on (60; 0 skips; 600 by hand)")
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help=f"comma-separated subset of {','.join(ALL_SERVERS + OPTIONAL_SERVERS)}")
    ap.add_argument("--bentoml-python",
                    default=os.environ.get("KEEL_BENCH_BENTOML_PYTHON", DEFAULT_BENTOML_PYTHON),
                    help="python of the BentoML venv (env KEEL_BENCH_BENTOML_PYTHON)")
    ap.add_argument("--mosec-python",
                    default=os.environ.get("KEEL_BENCH_MOSEC_PYTHON", DEFAULT_MOSEC_PYTHON),
                    help="python of the Mosec venv (env KEEL_BENCH_MOSEC_PYTHON)")
    ap.add_argument("--litserve-python",
                    default=os.environ.get("KEEL_BENCH_LITSERVE_PYTHON",
                                           DEFAULT_LITSERVE_PYTHON),
                    help="python of the LitServe venv (env KEEL_BENCH_LITSERVE_PYTHON)")
    ap.add_argument("--mosec-keel-python",
                    default=os.environ.get("KEEL_BENCH_MOSEC_KEEL_PYTHON",
                                           DEFAULT_MOSEC_KEEL_PYTHON),
                    help="a python with keelwork's dependencies, mosec and granian (mosec-keel, "
                         "keel-mosec, keel-granian)")
    ap.add_argument("--keel-baseline-src", default="",
                    help="a keelwork src/ directory to run as keel-base-batch-on (before/after)")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin the servers and wrk to separate CPUs")
    ap.add_argument("--access-log", action="store_true",
                    help="keep every server's per-request access log on")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(wanted) - set(ALL_SERVERS + OPTIONAL_SERVERS)
    if unknown:
        ap.error(f"unknown servers {sorted(unknown)}; choose from "
                 f"{', '.join(ALL_SERVERS + OPTIONAL_SERVERS)}")
    server_cpu, load_cpu = pin_cpus(args.pin)
    work = Path(tempfile.mkdtemp(prefix="keel-serving-bench-"))
    logs = work / "logs"
    logs.mkdir()
    print(f"machine: {machine_facts()}")
    print("pinning: " + (f"servers on CPU {server_cpu}, wrk on CPU {load_cpu}"
                         if server_cpu is not None else "none (servers and wrk share the CPUs)"))
    print(f"work dir: {work}")

    model, instance, label, x = train_model(work)
    body = json.dumps({"instances": [instance]}).encode()
    (work / "body.json").write_bytes(body)
    script = work / "post.lua"
    script.write_text(LUA.format(body_path=work / "body.json"))
    print(f"body: {len(body)} bytes, one instance of {N_FEATURES} floats; model says {label!r}")

    servers: list[Server] = []
    for server in server_specs(args, work, model, x):
        if server.name not in wanted:
            continue
        dest = VENV_SERVERS.get(server.name)
        if dest is not None and not Path(getattr(args, dest)).exists():
            flag = "--" + dest.replace("_", "-")
            print(f"skipping {server.name}: no python at {getattr(args, dest)} (create the "
                  f"venv as benchmarks/README.md says, or pass {flag})")
            continue
        servers.append(server)

    runs: dict[tuple[str, int], list[Result]] = {}
    malformed: dict[str, str] = {}
    answered: dict[str, int] = {}
    soak_report: dict[str, Any] | None = None
    try:
        # All servers stay up, idle but for the one under load, and take turns: on a shared
        # machine a slow minute then hurts every server alike instead of one of them.
        for server in servers:
            start(server, server_cpu, logs)
            check_answer(server, body, label)
            malformed[server.name] = malformed_answer(server)
            warm = run_wrk(server.base + PREDICT_PATH, script, 16, args.warmup, load_cpu)
            answered[server.name] = 1 + int(warm["requests"])
            print(f"{server.name}: up on port {server.port}, answer checked, warmed up "
                  f"({warm['requests'] / args.warmup:.0f} req/s at c=16)", flush=True)
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            for c in levels:
                for server in order:
                    r = measure(server, script, c, args.duration, load_cpu)
                    runs.setdefault((server.name, c), []).append(r)
                    answered[server.name] += r.requests
                    flag = f"  ({r.errors} errors!)" if r.errors else ""
                    print(f"  round {rnd + 1} c={c:<3} {server.name:<15} {r.rps:8.0f} req/s  "
                          f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                          f"{r.cpu_us:5.0f} CPU us/req{flag}", flush=True)
        for server in servers:
            rss = tree_rss_bytes(server_pid(server))
            print(f"{server.name}: resident memory after the runs {rss / 2**20:.0f} MiB")
        for server in servers:
            if server.name != SOAK_SERVER:
                stop(server)
        soak_server = next((s for s in servers if s.name == SOAK_SERVER), None)
        if soak_server is not None and args.soak > 0:
            print(f"soak: {SOAK_SERVER} at c=64 for {args.soak:g} s ...", flush=True)
            soak_report = soak(soak_server, script, args.soak, load_cpu)
            answered[SOAK_SERVER] += soak_report["requests"]
        for server in servers:
            if server.db is not None:
                stop(server)
                # wrk does not count answers in flight when it stops: rows >= answers counted
                rows = predictions_logged(server.db)
                print(f"{server.name}: prediction log holds {rows} rows for "
                      f"{answered[server.name]} answers counted by wrk "
                      f"[{'ok' if rows >= answered[server.name] else 'ROWS MISSING'}]")
    finally:
        for server in servers:
            stop(server)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results = [median_result(runs[(s.name, c)]) for c in levels for s in servers
               if (s.name, c) in runs]
    print(f"\nmedians over {args.rounds} round(s) of {args.duration:g} s:")
    print_table(results)
    missed = print_ratios(results, levels)
    print_paired(runs, levels)
    print("\nanswers to one instance of 2 features (a malformed request):")
    for name, answer in malformed.items():
        print(f"  {name:<19} {answer}")
    if soak_report is not None:
        s = soak_report
        ok = s["growth"] < RSS_GROWTH_LIMIT
        print(f"\nsoak ({SOAK_SERVER}, c=64, {s['seconds']:g} s, warm-up {s['warmup_s']:g} s): "
              f"{s['rps']:.0f} req/s, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, "
              f"{s['errors']} errors; RSS {s['rss_base'] / 2**20:.1f} -> "
              f"{s['rss_final'] / 2**20:.1f} MiB ({100 * s['growth']:+.1f}%, peak "
              f"{100 * s['peak_growth']:+.1f}%) [{'ok' if ok else 'MISSED'}: < +5%]")
        if not ok:
            missed.append("soak RSS growth < 5%")
    if missed:
        print(f"\n{len(missed)} goal(s) missed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
