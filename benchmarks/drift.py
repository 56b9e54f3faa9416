"""Data drift: keelwork's profile-based drift report against Evidently's DataDriftPreset.

Data (fixed seed): ``--rows`` rows (default 100,000 and 1,000,000) of 25 columns, 20 numeric
(``n00``..``n19``) and 5 categorical strings (``c0``..``c4``), three tables drawn independently:

- ``reference``;
- ``shifted``: the reference's distributions with exactly 7 columns changed, namely
  ``n00`` normal mean shift (+0.5 sd), ``n01`` normal variance change (sd x1.6),
  ``n02`` uniform offset (+2 on [0, 10]), ``n03`` exponential scale change (x1.5),
  ``n04`` two-normal mixture weight change (0.7/0.3 -> 0.4/0.6), ``c0`` Zipf over 12 levels
  in reversed order, ``c1`` 30 % of the rows relabelled to the rarest of 8 levels;
- ``control``: no drift, every column drawn from the reference's distributions.

The other 15 numeric columns are normal, lognormal, gamma, beta, Student t(5), Poisson(20),
Laplace, Weibull, Pareto, chi-square, logistic, triangular... the other 3 categorical ones have
3, 50 and 300 levels (300 is above keelwork's 100 named labels: an open vocabulary).

Tools, each in its own subprocess on the same Parquet files:

- ``keelwork``: ``profile_table(reference)`` (timed alone, profile written as JSON), then
  ``drift_report(profile, current)`` with the profile read back (the comparison, timed alone),
  and one process doing both on both tables (the like-for-like memory comparison). Defaults
  everywhere: Wasserstein (numeric) / Jensen-Shannon (categorical), floor 0.1 or the 99 %
  bootstrap noise level. Median of ``--repeat`` runs in the process.
- ``evidently``: ``Report([DataDriftPreset()])`` with defaults on ``Dataset.from_pandas`` of
  both tables (``DataDefinition`` naming the numeric and categorical columns); for more than
  1,000 rows that is Wasserstein distance (normed) for numeric columns and Jensen-Shannon
  distance for categorical ones, threshold 0.1. One run (it takes minutes at 1M rows). Runs
  with the python of ``--evidently-python`` (a venv of its own); skipped, with the reason
  printed, when that python does not exist or cannot import evidently.

Time excludes reading Parquet (and, for Evidently, ``Table.to_pandas()``); it includes
building Evidently's ``Dataset``s and reading its snapshot. Memory is the peak resident set
size of each measurement's own process (interpreter, imports, data loaded, the work), read
from ``os.wait4``'s rusage (``ru_maxrss``: what ``getrusage(RUSAGE_CHILDREN)`` reports for a
single child); the RSS with the data loaded is printed beside it.

Run: ``python benchmarks/drift.py --evidently-python /work/bench-venvs/evidently/bin/python``
(about 5 minutes, nearly all of it Evidently at 1M rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 20250601
SHIFTED = ["n00", "n01", "n02", "n03", "n04", "c0", "c1"]
NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
DEFAULT_EVIDENTLY = "/work/bench-venvs/evidently/bin/python"


# --------------------------------------------------------------------------- data
def _levels(prefix: str, k: int) -> list[str]:
    return [f"{prefix}_{i:03d}" for i in range(k)]


def _zipf(k: int, s: float) -> Any:
    import numpy as np

    p = 1.0 / np.arange(1, k + 1) ** s
    return p / p.sum()


def _columns(rng: Any, n: int, shift: bool) -> dict[str, Any]:
    """One table; ``shift`` changes exactly the columns in :data:`SHIFTED`."""
    import numpy as np

    out: dict[str, Any] = {}
    out["n00"] = rng.normal(0.5 if shift else 0.0, 1.0, n)
    out["n01"] = rng.normal(5.0, 2.0 * (1.6 if shift else 1.0), n)
    out["n02"] = rng.uniform(0.0, 10.0, n) + (2.0 if shift else 0.0)
    out["n03"] = rng.exponential(3.0 * (1.5 if shift else 1.0), n)
    w = 0.6 if shift else 0.3
    out["n04"] = np.where(rng.random(n) < w, rng.normal(3.0, 1.0, n), rng.normal(-2.0, 1.0, n))
    out["n05"] = rng.normal(100.0, 15.0, n)
    out["n06"] = rng.lognormal(0.0, 1.0, n)
    out["n07"] = rng.gamma(2.0, 2.0, n)
    out["n08"] = rng.beta(2.0, 5.0, n)
    out["n09"] = rng.standard_t(5, n)
    out["n10"] = rng.poisson(20, n).astype(np.int64)
    out["n11"] = rng.uniform(-1.0, 1.0, n)
    out["n12"] = rng.laplace(0.0, 2.0, n)
    out["n13"] = rng.weibull(1.5, n)
    out["n14"] = rng.pareto(4.0, n) + 1.0
    out["n15"] = np.round(rng.normal(0.0, 1.0, n), 2)
    out["n16"] = rng.chisquare(4, n)
    out["n17"] = np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n), rng.uniform(5, 8, n))
    out["n18"] = rng.logistic(0.0, 1.0, n)
    out["n19"] = rng.triangular(0.0, 3.0, 10.0, n)
    p0 = _zipf(12, 1.2)
    out["c0"] = (_levels("z", 12), rng.choice(12, n, p=p0[::-1] if shift else p0))
    p1 = np.array([0.30, 0.20, 0.15, 0.12, 0.10, 0.07, 0.04, 0.02])
    codes = rng.choice(8, n, p=p1)
    if shift:
        codes = np.where(rng.random(n) < 0.3, 7, codes)
    out["c1"] = (_levels("r", 8), codes)
    out["c2"] = (["yes", "no", "maybe"], rng.choice(3, n, p=[0.5, 0.35, 0.15]))
    out["c3"] = (_levels("m", 50), rng.choice(50, n, p=_zipf(50, 0.8)))
    out["c4"] = (_levels("sku", 300), rng.choice(300, n, p=_zipf(300, 1.0)))
    return out


def build(rows: int, directory: Path) -> dict[str, Path]:
    """Write reference / shifted / control Parquet files of ``rows`` rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {}
    for i, name in enumerate(("reference", "shifted", "control")):
        rng = np.random.default_rng([SEED, rows, i])
        cols = {}
        for col, value in _columns(rng, rows, shift=name == "shifted").items():
            if isinstance(value, tuple):
                labels, codes = value
                value = pa.DictionaryArray.from_arrays(
                    pa.array(codes, pa.int32()), pa.array(labels)).dictionary_decode()
            cols[col] = value
        paths[name] = directory / f"{name}_{rows}.parquet"
        pq.write_table(pa.table(cols), paths[name])
    return paths


# --------------------------------------------------------------------------- children
def _rss() -> int:
    statm = Path("/proc/self/statm").read_text()
    return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child_keelwork(step: str, reference: Path, current: Path | None, profile: Path,
                   repeat: int) -> dict[str, Any]:
    """``profile``: profile the reference; ``compare``: report with the stored profile;
    ``full``: both, in one process."""
    import pyarrow.parquet as pq

    from keelwork.core.monitors.drift import drift_report
    from keelwork.core.monitors.profile import TableProfile, profile_table

    ref_table = pq.read_table(reference) if step in ("profile", "full") else None
    cur_table = pq.read_table(current) if current is not None else None
    stored = (TableProfile.from_dict(json.loads(profile.read_text()))
              if step == "compare" else None)
    loaded = _rss()
    times, report = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        prof = stored if stored is not None else profile_table(ref_table)
        if step != "profile":
            report = drift_report(prof, cur_table).to_dict()
        times.append(time.perf_counter() - started)
    if step == "profile":
        profile.write_text(json.dumps(prof.as_dict()))
    out: dict[str, Any] = {"seconds": statistics.median(times), "all_seconds": times,
                           "loaded_rss": loaded}
    if report is not None:
        out["flagged"] = report["summary"]["drifted"]
        out["columns"] = {c["column"]: {"drift": c["drift"], "method": c["method"],
                                        "score": c["score"], "threshold": c["threshold"]}
                          for c in report["columns"]}
    return out


def child_evidently(reference: Path, current: Path) -> dict[str, Any]:
    import evidently
    import pandas as pd
    import pyarrow.parquet as pq
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref_df = pq.read_table(reference).to_pandas()
    cur_df = pq.read_table(current).to_pandas()
    loaded = _rss()
    started = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur_df, data_definition=definition),
        Dataset.from_pandas(ref_df, data_definition=definition))
    result = snapshot.dict()
    seconds = time.perf_counter() - started
    columns = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, value = config["method"], config["threshold"], metric["value"]
        # p-value tests (small samples) drift below the threshold, distances at or above it
        drift = value < threshold if "p_value" in method else value >= threshold
        columns[config["column"]] = {"drift": bool(drift), "method": method,
                                     "score": float(value), "threshold": float(threshold)}
    return {"seconds": seconds, "loaded_rss": loaded, "columns": columns,
            "flagged": [c for c in NUMERIC + CATEGORICAL if columns.get(c, {}).get("drift")],
            "versions": f"evidently {evidently.__version__}, pandas {pd.__version__}"}


# --------------------------------------------------------------------------- the run
def measure(python: str, args: list[str]) -> dict[str, Any]:
    """Run one child; its JSON result plus ``peak_rss`` (bytes) from its own rusage."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, __file__, *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"child {args} failed ({proc.returncode}):\n{err.read()[-4000:]}")
        result: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
    result["peak_rss"] = usage.ru_maxrss * 1024  # KiB on Linux
    return result


def evidently_problem(python: str) -> str | None:
    if not Path(python).exists():
        return f"{python} does not exist"
    probe = subprocess.run([python, "-c", "import evidently, pyarrow"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        return f"{python} cannot import evidently and pyarrow: {probe.stderr.strip()[-300:]}"
    return None


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _fmt(c: dict[str, Any] | None) -> str:
    if not c:
        return f"{'-':>38}"
    name = {"Wasserstein distance (normed)": "wasserstein",
            "Jensen-Shannon distance": "js"}.get(c["method"], c["method"])
    return f"{name:>12} {c['score']:8.4f} {c['threshold']:7.4f} {'DRIFT' if c['drift'] else '':>5}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000",
                        help="comma-separated row counts (default 100000,1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="keelwork runs per process")
    parser.add_argument("--evidently-python", default=DEFAULT_EVIDENTLY)
    parser.add_argument("--child", choices=["profile", "compare", "full", "evidently"])
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--current", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    if args.child == "evidently":
        print(json.dumps(child_evidently(args.reference, args.current)))
        return
    if args.child:
        print(json.dumps(child_keelwork(args.child, args.reference, args.current, args.profile,
                                        args.repeat)))
        return

    import numpy
    import pyarrow

    sizes = [int(r) for r in args.rows.split(",")]
    skip = evidently_problem(args.evidently_python)
    print(f"Drift: 20 numeric + 5 categorical columns; shifted: {', '.join(SHIFTED)}")
    print(f"Python {platform.python_version()}, numpy {numpy.__version__}, pyarrow "
          f"{pyarrow.__version__}; {os.cpu_count()} CPUs; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command: python {' '.join(sys.argv)}")
    if skip:
        print(f"Evidently skipped: {skip}")
    problems: list[str] = []
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            paths = build(rows, Path(tmp))
            prof_path = Path(tmp) / f"profile_{rows}.json"
            common = ["--reference", str(paths["reference"]), "--profile", str(prof_path),
                      "--repeat", str(args.repeat)]
            prof = measure(sys.executable, ["--child", "profile", *common])
            print(f"\n=== {rows:,} rows ===")
            print(f"keelwork profile_table(reference): {prof['seconds']:.3f} s "
                  f"(median of {args.repeat}), peak RSS {_mb(prof['peak_rss'])}")
            for data in ("shifted", "control"):
                cur = ["--current", str(paths[data])]
                k = measure(sys.executable, ["--child", "compare", *common, *cur])
                full = measure(sys.executable, ["--child", "full", *common, *cur])
                e = None if skip else measure(args.evidently_python, [
                    "--child", "evidently", "--reference", str(paths["reference"]), *cur])
                want = SHIFTED if data == "shifted" else []
                print(f"\n-- {data} (want flagged: {want or 'none'})")
                print(f"{'column':7}{'keelwork: method':>17} {'score':>8} {'thresh':>7} {'':5}  "
                      f"{'evidently: method':>17} {'score':>8} {'thresh':>7}")
                for col in NUMERIC + CATEGORICAL:
                    print(f"{col:7}{_fmt(k['columns'].get(col)):>38}  "
                          f"{_fmt(e['columns'].get(col) if e else None)}")
                for tool, res in (("keelwork", k), ("evidently", e)):
                    if res is None:
                        continue
                    ok = res["flagged"] == want
                    print(f"{tool} flags {res['flagged'] or 'nothing'}: "
                          f"{'exactly the ' + str(len(want)) if ok else 'MISMATCH'}")
                    for col in sorted(set(res["flagged"]) ^ set(want)):
                        c = res["columns"].get(col, {})
                        problems.append(
                            f"{tool}, {rows:,} rows, {data}: {col} "
                            f"{'flagged' if col in res['flagged'] else 'missed'} "
                            f"(method {c.get('method')}, score {c.get('score')}, threshold "
                            f"{c.get('threshold')})")
                print(f"keelwork drift_report with stored profile: {k['seconds']:.3f} s, "
                      f"peak RSS {_mb(k['peak_rss'])} (data loaded {_mb(k['loaded_rss'])})")
                print(f"keelwork profile + report, one process:   {full['seconds']:.3f} s, "
                      f"peak RSS {_mb(full['peak_rss'])} (data loaded {_mb(full['loaded_rss'])})")
                if e is None:
                    continue
                print(f"evidently DataDriftPreset ({e['versions']}): {e['seconds']:.2f} s, "
                      f"peak RSS {_mb(e['peak_rss'])} (data loaded {_mb(e['loaded_rss'])})")
                r = {"rows": rows, "data": data,
                     "speed_compare": e["seconds"] / k["seconds"],
                     "speed_with_profile": e["seconds"] / (prof["seconds"] + k["seconds"]),
                     "mem_full": full["peak_rss"] / e["peak_rss"],
                     "mem_compare": k["peak_rss"] / e["peak_rss"]}
                summary.append(r)
                print(f"ratios: evidently / keelwork time = {r['speed_compare']:.1f}x "
                      f"(stored profile), {r['speed_with_profile']:.1f}x (incl. reference "
                      f"profiling); keelwork / evidently peak RSS = {r['mem_full']:.3f} "
                      f"(profile + report) , {r['mem_compare']:.3f} (report only)")
    print(f"\nload average at end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    top = max(sizes)
    for r in summary:
        if r["rows"] != top:
            continue
        goals = [("time, stored profile >= 50x", r["speed_compare"] >= 50),
                 ("time incl. profiling >= 20x", r["speed_with_profile"] >= 20),
                 ("peak RSS (profile + report) <= 1/3", r["mem_full"] <= 1 / 3)]
        print(f"goals at {top:,} rows, {r['data']}: "
              + "; ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in goals))
    if problems:
        raise SystemExit("WRONG FLAGS:\n" + "\n".join(problems))
    print("flags: every tool run flagged exactly the shifted columns, and nothing on the control")


if __name__ == "__main__":
    main()
