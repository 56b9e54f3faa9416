"""Scale-out on one machine: `keel serve` as one process, `--workers 2`, and Ray Serve with one
and two replicas with the model inside each gateway replica (`--engine ray --replicas 1|2
--no-version-deployments`), and with the model in a deployment of its own (`keel serve
--engine ray`'s default, named `--version-deployments` here), same model, same body, same
PostgreSQL server.

The model (by default: ``--model tiny``), keel.yaml (30-field contract, durable log with
``durability: sync``, batching on),
body and ``wrk`` load are those of ``benchmarks/serving.py``; the store is a throw-away
PostgreSQL (``tests/pg.py``), one database per server, since Ray's replicas refuse SQLite. No
pinning: each server may use the whole machine (that is what it is for), ``wrk`` included. The
servers start first, then take turns level by level for ``--rounds`` rounds; the table shows
medians. At the end each server's prediction log must hold a row per answer ``wrk`` counted.
The ratio printed is each server's throughput over the one-process server's at the same level.

Before the rounds every server is left idle for ``--idle`` seconds (all at once) and its
process tree's CPU use is printed in cores: Ray's daemons, controller and proxy keep polling,
and that background is spread over the requests of a run.

``--model heavy`` measures what replicas are for: a model whose own work dominates. It is a
scikit-learn RandomForestClassifier (``--trees`` trees, 500 by default, ``max_depth`` 10,
``n_jobs=1``) fitted at start on the same 30-feature data; one prediction costs about 20-25 ms
of CPU on this machine, in one thread, steady from call to call (printed as "bare predict",
measured in this process before the servers start). Every server process starts with
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to 1 (after warm-up
the script counts the processes of each server's tree that have them: all but Ray's dashboard
and runtime-env agents, which serve nothing), so one replica uses one core for the model.
Batching is OFF in this mode (``batching.enabled: false``: the gateway's micro-batching and,
with ``--version-deployments``, Ray's ``@serve.batch`` get batches of 1). A forest's
``predict`` costs mostly a fixed step per tree (scikit-learn calls each tree from Python), so
a batch of 16 costs about what one instance costs (printed beside the bare cost): with batching
on, the server whose batcher gathers more would win on batching, not on replicas, and the
model's work would stop dominating. ``timeout_ms`` is 30 s in this mode (32 requests queued at
20 ms each are most of a second on one core), and the model's skops file trusts
``sklearn.tree._tree.Tree``. Each run also reads the server's own count of its model calls'
CPU (``keelwork_model_cpu_seconds_total`` on ``/metrics``; the version replicas' time is
counted by the gateway too) and the CPU of each process of its tree by role (Ray's process
titles: proxy, ingress and gateway replicas, raylet, GCS, ...). The summary splits each
server's CPU per request into its idle background (idle cores / req/s), the model (as the
server counts it) and the rest, the server's own work per request; the rest minus the
one-process server's is what Ray adds. It also prints each two-replica server's throughput
over its one-replica twin's (``--workers 2`` over one process, ``--replicas 2`` over 1, with
and without ``--version-deployments``). Ray starts its workers (the replicas) 15 steps of
niceness below their driver by default; ``keel serve`` starts them at its own (session 16,
``keelwork.adapters.engines.ray_serve.WORKER_NICENESS``). Runs recorded before that used Ray's
15 unless they name ``--ray-worker-niceness 0``, an option this script had then.

Run (needs ``keelwork[ray,postgres,sklearn]``, ``wrk`` and PostgreSQL's server binaries)::

    python benchmarks/scale_out.py --rounds 1 --duration 5 --concurrency 16,64
    python benchmarks/scale_out.py --model heavy --rounds 3 --duration 8 --concurrency 8,32 \
        --servers keel-1,keel-workers-2,keel-ray-1,keel-ray-2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from serving import (  # noqa: E402
    LUA,
    N_FEATURES,
    PREDICT_PATH,
    SEED,
    Result,
    Server,
    check_answer,
    machine_facts,
    measure,
    median_result,
    print_table,
    run_wrk,
    start,
    stop,
    train_model,
    tree_cpu_seconds,
    tree_rss_bytes,
    write_project,
)

from pg import TempPostgres  # noqa: E402

SERVERS = {
    "keel-1": [],
    "keel-workers-2": ["--workers", "2"],
    # the model inside each gateway replica
    "keel-ray-1": ["--engine", "ray", "--replicas", "1", "--no-version-deployments"],
    "keel-ray-2": ["--engine", "ray", "--replicas", "2", "--no-version-deployments"],
    # the model in a Serve deployment of its own, batched by Ray's @serve.batch (the default)
    "keel-ray-1-versions": ["--engine", "ray", "--replicas", "1", "--version-deployments"],
    # the same with two replicas of the gateway, the ingress and the version (run when named)
    "keel-ray-2-versions": ["--engine", "ray", "--replicas", "2", "--version-deployments"],
}
DEFAULT_SERVERS = ("keel-1", "keel-workers-2", "keel-ray-1", "keel-ray-2", "keel-ray-1-versions")
#: Servers of one replica -> their two-replica twins (the ratio printed with --model heavy).
TWINS = {"keel-1": "keel-workers-2", "keel-ray-1": "keel-ray-2",
         "keel-ray-1-versions": "keel-ray-2-versions"}
#: One thread for BLAS and OpenMP in every server process (--model heavy).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
HEAVY_TIMEOUT_MS = 30000
#: The forest's trees are a type skops loads only when keel.yaml trusts it.
HEAVY_OPTIONS = "options: {trusted: ['sklearn.tree._tree.Tree']}"


def logged(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("select count(*) from predictions")).scalar_one())
    finally:
        engine.dispose()


def train_heavy(directory: Path, trees: int) -> tuple[Path, list[float], Any, Any, Any]:
    """A RandomForest on the serving benchmark's data (one thread): (path, one instance, its
    label, the training data, the fitted model)."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(n_samples=5000, n_features=N_FEATURES, n_informative=12,
                               random_state=SEED)
    model = RandomForestClassifier(n_estimators=trees, max_depth=10, n_jobs=1,
                                   random_state=SEED).fit(x, y)
    path = directory / "model.skops"
    sio.dump(model, path)
    instance = [round(float(v), 6) for v in x[0]]
    label = model.predict(np.asarray([instance]))[0].item()
    return path, instance, label, x, model


def predict_cpu_ms(model: Any, rows: Any, calls: int) -> float:
    """CPU milliseconds of one ``model.predict(rows)`` in this process (median of 5 blocks)."""
    model.predict(rows)
    blocks = []
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(calls):
            model.predict(rows)
        blocks.append(1e3 * (time.process_time() - t0) / calls)
    return sorted(blocks)[2]


def tree_env_pinned(pid: int) -> tuple[int, int, list[str]]:
    """(processes in ``pid``'s tree with every ONE_THREAD variable at 1, processes read, the
    names of the others)."""
    pinned = seen = 0
    others: list[str] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            env = dict(item.split("=", 1) for item in
                       Path(f"/proc/{p}/environ").read_text(errors="replace").split("\0")
                       if "=" in item)
            seen += 1
            if all(env.get(k) == v for k, v in ONE_THREAD.items()):
                pinned += 1
            else:
                others.append(Path(f"/proc/{p}/comm").read_text().strip())
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pinned, seen, others


def role_of(title: str) -> str:
    """A Ray process title without the method it is running (Ray retitles a replica
    ``ray::ServeReplica:<app>:<deployment>.<method>`` while it runs one)."""
    head, _, last = title.rpartition(":")
    return f"{head}:{last.split('.', 1)[0]}" if head else title.split(".", 1)[0]


def tree_cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s tree by process role: Ray's process title (``ray::ProxyActor``,
    ``ray::ServeReplica:<app>:<deployment>``, see :func:`role_of`) or the program's name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            role = argv[0].decode(errors="replace").split()[0] if argv and argv[0] else "?"
            if role.startswith("ray::"):
                role = role_of(role)
            else:
                role = Path(role).name
                if role.startswith("python") and len(argv) > 1:  # a worker of keel serve
                    role = "keel serve (worker)" if b"multiprocessing" in b" ".join(argv) \
                        else "keel serve"
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def model_cpu_seconds(server: Server) -> float:
    """The server's own count of its model calls' CPU seconds (``/metrics``,
    ``keelwork_model_cpu_seconds_total``, every version; 0.0 when it cannot be read)."""
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(server.base + "/metrics", timeout=10) as resp:
            text_ = resp.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text_.splitlines()
                   if line.startswith("keelwork_model_cpu_seconds_total{"))
    return 0.0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def server_env(heavy: bool) -> dict[str, str]:
    """One BLAS/OpenMP thread with --model heavy."""
    return dict(ONE_THREAD) if heavy else {}


def idle_cores(servers: list[Server], seconds: float) -> dict[str, float]:
    """Each server's CPU use with no request in flight (all idle at once), in cores: Ray's
    daemons, controller and proxies keep polling, and at a few dozen requests/s that background
    is a large part of a server's CPU per request."""
    pids = {s.name: s.proc.pid for s in servers if s.proc is not None}
    before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    out = {name: (tree_cpu_seconds(pid) - before[name]) / seconds for name, pid in pids.items()}
    for name, cores in out.items():
        print(f"{name}: idle for {seconds:g} s, {cores:.3f} CPU cores", flush=True)
    return out


def print_heavy(results: list[Result], bare_ms: float, idle: dict[str, float],
                model_ms: dict[tuple[str, int], float]) -> None:
    """Two replicas over one, and the CPU each server spends per request: in all, its idle
    background (idle cores / req/s), the model's calls as the server counts them (its
    ``/metrics``), and the rest: the server's own work per request."""
    by = {(r.server, r.concurrency): r for r in results}
    print(f"\nbare predict (this process, before the servers started): {bare_ms:.2f} ms CPU per "
          "request; CPU ms per request, medians over the rounds:")
    print(f"{'server':<20}{'conc':>5}{'all':>8}{'idle':>8}{'model':>8}{'own':>8}"
          f"{'own - keel-1':>14}")
    own: dict[tuple[str, int], float] = {}
    for r in results:
        background = 1e3 * idle.get(r.server, 0.0) / max(r.rps, 1e-9)
        model = model_ms.get((r.server, r.concurrency), float("nan"))
        own[(r.server, r.concurrency)] = r.cpu_us / 1e3 - background - model
    for r in results:
        key = (r.server, r.concurrency)
        background = 1e3 * idle.get(r.server, 0.0) / max(r.rps, 1e-9)
        base = own.get(("keel-1", r.concurrency), float("nan"))
        print(f"{r.server:<20}{r.concurrency:>5}{r.cpu_us / 1e3:>8.2f}{background:>8.2f}"
              f"{model_ms.get(key, float('nan')):>8.2f}{own[key]:>8.2f}{own[key] - base:>+14.2f}")
    for one_name, two in TWINS.items():
        for (name, c), r in by.items():
            if name == one_name and (two, c) in by:
                print(f"{two} / {one_name} c={c}: {by[(two, c)].rps / r.rps:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per run (8)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds (5)")
    ap.add_argument("--concurrency", default="16,64", help="levels (16,64)")
    ap.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                    help="subset of " + ",".join(SERVERS))
    ap.add_argument("--model", choices=("tiny", "heavy"), default="tiny",
                    help="tiny: the serving benchmark's LogisticRegression (default); heavy: a "
                         "RandomForest of --trees trees, batching off, one thread")
    ap.add_argument("--trees", type=int, default=500, help="trees of --model heavy (500)")
    ap.add_argument("--idle", type=float, default=10.0,
                    help="seconds each server's idle CPU is measured before the rounds (10)")
    args = ap.parse_args(argv)
    heavy = args.model == "heavy"
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    wanted = [s for s in args.servers.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="keel-scale-out-bench-"))
    (work / "logs").mkdir()
    print(f"machine: {machine_facts()}; {load()}")
    bare_ms = 0.0
    if heavy:
        os.environ.update(ONE_THREAD)  # this process's bare predict too (numpy not loaded yet)
        model, instance, label, x, fitted = train_heavy(work, args.trees)
        import numpy as np
        bare_ms = predict_cpu_ms(fitted, np.asarray([instance]), 20)
        batch_ms = predict_cpu_ms(fitted, np.asarray(x[:16]), 20)
        print(f"model: RandomForestClassifier({args.trees} trees, max_depth 10, n_jobs 1); bare "
              f"predict {bare_ms:.2f} ms CPU per instance (a batch of 16: {batch_ms:.2f} ms, "
              "so batching is off in this mode)")
        del fitted
    else:
        model, instance, label, x = train_model(work)
    body = json.dumps({"instances": [instance]}).encode()
    (work / "body.json").write_bytes(body)
    script = work / "post.lua"
    script.write_text(LUA.format(body_path=work / "body.json"))
    print(f"body: one instance of {N_FEATURES} floats; store: PostgreSQL on loopback")
    keel = str(Path(sys.executable).parent / "keel")
    runs: dict[tuple[str, int], list[Result]] = {}
    answered: dict[str, int] = {}
    in_server: dict[tuple[str, int], list[float]] = {}  # model CPU ms/req, by its /metrics
    measured: dict[str, int] = {}  # answers counted by the measured runs, per server
    roles: dict[str, dict[str, float]] = {}  # CPU seconds by process role over those runs
    with TempPostgres.start() as pg:
        servers: list[tuple[Server, str]] = []
        for name in wanted:
            url = pg.create_database()
            spec = write_project(work / name, model, x, batching=not heavy)
            yaml = spec.read_text().replace("storage:\n", f"storage:\n  url: '{url}'\n")
            if heavy:
                yaml = yaml.replace("timeout_ms: 1000", f"timeout_ms: {HEAVY_TIMEOUT_MS}").replace(
                    "artifact: model.skops\n", f"artifact: model.skops\n    {HEAVY_OPTIONS}\n")
            spec.write_text(yaml)
            servers.append((Server(name, [keel, "serve", str(spec), "--host", "127.0.0.1",
                                          "--port", "{port}", "--log-level", "warning",
                                          "--no-access-log", *SERVERS[name]],
                                   "/v2/health/ready", work / name,
                                   server_env(heavy)), url))
        try:
            for server, _ in servers:
                start(server, None, work / "logs")
                check_answer(server, body, label)
                warm = run_wrk(server.base + PREDICT_PATH, script, 16, args.warmup, None)
                answered[server.name] = 1 + int(warm["requests"])
                pinned = ""
                if heavy:
                    assert server.proc is not None
                    ok, seen, others = tree_env_pinned(server.proc.pid)
                    pinned = (f"; {ok} of {seen} processes with one BLAS/OpenMP thread"
                              + (f" (not: {', '.join(sorted(others))})" if others else ""))
                print(f"{server.name}: up, answer checked, warmed up{pinned}", flush=True)
            idle = idle_cores([s for s, _ in servers], args.idle)
            for rnd in range(args.rounds):
                print(f"round {rnd + 1}: {load()}", flush=True)
                for c in levels:
                    for server, _ in servers:
                        assert server.proc is not None
                        roles0 = tree_cpu_by_role(server.proc.pid)
                        model0 = model_cpu_seconds(server) if heavy else 0.0
                        r = measure(server, script, c, args.duration, None)
                        roles1 = tree_cpu_by_role(server.proc.pid)
                        if heavy:
                            in_server.setdefault((server.name, c), []).append(
                                1e3 * (model_cpu_seconds(server) - model0) / max(1, r.requests))
                        spent = roles.setdefault(server.name, {})
                        for role, sec in roles1.items():
                            spent[role] = spent.get(role, 0.0) + sec - roles0.get(role, 0.0)
                        runs.setdefault((server.name, c), []).append(r)
                        answered[server.name] += r.requests
                        measured[server.name] = measured.get(server.name, 0) + r.requests
                        print(f"  round {rnd + 1} c={c:<3} {server.name:<19} {r.rps:8.0f} "
                              f"req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                              f"{r.cpu_us:5.0f} CPU us/req" + (
                                  f", model {in_server[(server.name, c)][-1]:.2f} ms/req"
                                  if heavy else ""), flush=True)
            for server, url in servers:
                assert server.proc is not None
                rss = tree_rss_bytes(server.proc.pid)
                stop(server)
                rows = logged(url)
                print(f"{server.name}: {rss / 2**20:.0f} MiB resident (process tree); log "
                      f"holds {rows} rows for {answered[server.name]} answers "
                      f"[{'ok' if rows >= answered[server.name] else 'ROWS MISSING'}]")
        finally:
            for server, _ in servers:
                stop(server)
            shutil.rmtree(work, ignore_errors=True)
    results = [median_result(runs[(s.name, c)]) for c in levels for s, _ in servers
               if (s.name, c) in runs]
    print(f"\nmedians over {args.rounds} round(s) of {args.duration:g} s; at the end: {load()}")
    print_table(results)
    base = {r.concurrency: r.rps for r in results if r.server == "keel-1"}
    for r in results:
        if r.concurrency in base:
            print(f"{r.server:<20} c={r.concurrency:<3} {r.rps / base[r.concurrency]:.2f}x "
                  "the one-process server")
    if heavy:
        print_heavy(results, bare_ms, idle,
                    {k: statistics.median(v) for k, v in in_server.items()})
        print("\nCPU ms per request by process, all measured runs together:")
        for name, spent in roles.items():
            parts = sorted(spent.items(), key=lambda kv: -kv[1])
            print(f"{name}: " + ", ".join(f"{role} {1e3 * sec / max(1, measured[name]):.2f}"
                                          for role, sec in parts if sec > 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
