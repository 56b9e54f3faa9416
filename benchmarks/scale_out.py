"""Scale-out on one machine: `keel serve` as one process, `--workers 2`, and Ray Serve with one
and two replicas (`--engine ray --replicas 1|2`, and one replica with the model in a deployment
of its own: `--version-deployments`), same model, same body, same PostgreSQL server.

The model, keel.yaml (30-field contract, durable log with ``durability: sync``, batching on),
body and ``wrk`` load are those of ``benchmarks/serving.py``; the store is a throw-away
PostgreSQL (``tests/pg.py``), one database per server, since Ray's replicas refuse SQLite. No
pinning: each server may use the whole machine (that is what it is for), ``wrk`` included. The
servers start first, then take turns level by level for ``--rounds`` rounds; the table shows
medians. At the end each server's prediction log must hold a row per answer ``wrk`` counted.
The ratio printed is each server's throughput over the one-process server's at the same level.

Run (needs ``keelwork[ray,postgres,sklearn]``, ``wrk`` and PostgreSQL's server binaries)::

    python benchmarks/scale_out.py --rounds 1 --duration 5 --concurrency 16,64
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from serving import (  # noqa: E402
    LUA,
    N_FEATURES,
    PREDICT_PATH,
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
    tree_rss_bytes,
    write_project,
)

from pg import TempPostgres  # noqa: E402

SERVERS = {
    "keel-1": [],
    "keel-workers-2": ["--workers", "2"],
    "keel-ray-1": ["--engine", "ray", "--replicas", "1"],
    "keel-ray-2": ["--engine", "ray", "--replicas", "2"],
    # the model in a Serve deployment of its own, batched by Ray's @serve.batch
    "keel-ray-1-versions": ["--engine", "ray", "--replicas", "1", "--version-deployments"],
}


def logged(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("select count(*) from predictions")).scalar_one())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per run (8)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds (5)")
    ap.add_argument("--concurrency", default="16,64", help="levels (16,64)")
    ap.add_argument("--servers", default=",".join(SERVERS), help="subset of " + ",".join(SERVERS))
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    wanted = [s for s in args.servers.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="keel-scale-out-bench-"))
    (work / "logs").mkdir()
    print(f"machine: {machine_facts()}")
    model, instance, label, x = train_model(work)
    body = json.dumps({"instances": [instance]}).encode()
    (work / "body.json").write_bytes(body)
    script = work / "post.lua"
    script.write_text(LUA.format(body_path=work / "body.json"))
    print(f"body: one instance of {N_FEATURES} floats; store: PostgreSQL on loopback")
    keel = str(Path(sys.executable).parent / "keel")
    runs: dict[tuple[str, int], list[Result]] = {}
    answered: dict[str, int] = {}
    with TempPostgres.start() as pg:
        servers: list[tuple[Server, str]] = []
        for name in wanted:
            url = pg.create_database()
            spec = write_project(work / name, model, x, batching=True)
            spec.write_text(spec.read_text().replace(
                "storage:\n", f"storage:\n  url: '{url}'\n"))
            servers.append((Server(name, [keel, "serve", str(spec), "--host", "127.0.0.1",
                                          "--port", "{port}", "--log-level", "warning",
                                          "--no-access-log", *SERVERS[name]],
                                   "/v2/health/ready", work / name), url))
        try:
            for server, _ in servers:
                start(server, None, work / "logs")
                check_answer(server, body, label)
                warm = run_wrk(server.base + PREDICT_PATH, script, 16, args.warmup, None)
                answered[server.name] = 1 + int(warm["requests"])
                print(f"{server.name}: up, answer checked, warmed up", flush=True)
            for rnd in range(args.rounds):
                for c in levels:
                    for server, _ in servers:
                        r = measure(server, script, c, args.duration, None)
                        runs.setdefault((server.name, c), []).append(r)
                        answered[server.name] += r.requests
                        print(f"  round {rnd + 1} c={c:<3} {server.name:<15} {r.rps:8.0f} "
                              f"req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                              f"{r.cpu_us:5.0f} CPU us/req", flush=True)
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
    print(f"\nmedians over {args.rounds} round(s) of {args.duration:g} s:")
    print_table(results)
    base = {r.concurrency: r.rps for r in results if r.server == "keel-1"}
    for r in results:
        if r.concurrency in base:
            print(f"{r.server:<16} c={r.concurrency:<3} {r.rps / base[r.concurrency]:.2f}x "
                  "the one-process server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
