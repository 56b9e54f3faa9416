"""Batch validation: keelwork's vectorised engine against Pandera, same data, same run.

Data: ``--rows`` rows (default 1,000,000) of 20 float columns (``f0``..``f19``, uniform in
[-1000, 1000]) and 5 categorical string columns (``c0``..``c4``, 4 categories each), once all
valid and once with planted violations: per float column, values below min, above max, NaN and
nulls; per categorical column, unknown categories and nulls (all at distinct, seeded rows).

Contract (keelwork): ``float`` fields with ``min: -1000, max: 1000``, ``category`` fields with
their 4 categories, no nulls. Equivalent Pandera schema: ``Column(float, Check.in_range(-1000,
1000), nullable=False)`` and ``Column(str, Check.isin(cats), nullable=False)``, validated with
``lazy=True`` (every failure collected, as keelwork does). Pandera validates the pandas
DataFrame of the same table (``Table.to_pandas()``: float64 and object columns).

Each tool runs in its own process (one for valid, one for invalid data) that loads the data
from Parquet, times a first call (cold: imports and caches), validates once while a thread
samples the resident memory every millisecond, then times the validation (best of ``--repeat``
rounds, each timed alone, no sampler running). keelwork runs with its defaults: with numba
installed (``keelwork[fast]``, part of ``[bench]``) it loads its compiled category kernel once
the process has checked 16M text values with Arrow (``KEELWORK_JIT=auto``), i.e. during the timed
rounds of the string cases; the output says when it was loaded.
Memory is reported as the peak during the sampled round over the resident memory with the data
loaded, as a multiple of the data's in-memory size (Arrow ``Table.nbytes`` / pandas
``memory_usage(deep=True)``): 1.00x = no extra memory.

The run fails unless keelwork counts every planted violation exactly (per column and rule) and
Pandera finds the same number of failures per column.

Run: ``python benchmarks/validation.py`` (about a minute; ``--rows``, ``--repeat`` adjust).
Needs ``pip install pandera``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

N_FLOAT, N_CAT, LO, HI = 20, 5, -1000.0, 1000.0
CATS = [["red", "green", "blue", "black"], ["s", "m", "l", "xl"],
        ["north", "south", "east", "west"], ["bronze", "silver", "gold", "platinum"],
        ["cat", "dog", "bird", "fish"]]
#: planted per column: float columns get (min, max, finite, nullable); categorical ones
#: (category, nullable). Counts per column (distinct rows per column).
PLANT_FLOAT = {"min": 300, "max": 200, "finite": 100, "nullable": 50}
PLANT_CAT = {"category": 250, "nullable": 40}


# --------------------------------------------------------------------------- data
def build(rows: int, directory: Path) -> dict[str, Any]:
    """Write {string,dictionary}_{valid,invalid}.parquet; return the planted counts."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(7)
    columns: dict[str, Any] = {}
    for i in range(N_FLOAT):
        columns[f"f{i}"] = pa.array(rng.uniform(LO, HI, rows))
    for i in range(N_CAT):
        columns[f"c{i}"] = pa.array(np.asarray(CATS[i], dtype=object)[rng.integers(0, 4, rows)],
                                    pa.string())
    valid = pa.table(columns)
    _write(valid, directory, "valid")
    planted: dict[str, dict[str, int]] = {}
    for name in valid.column_names:
        plan = PLANT_FLOAT if name.startswith("f") else PLANT_CAT
        total = sum(plan.values())
        where = rng.choice(rows, size=total, replace=False)
        values = valid.column(name).to_pylist() if name.startswith("c") else \
            valid.column(name).to_numpy().astype(object)
        values = list(values)
        start = 0
        for rule, count in plan.items():
            for row in where[start:start + count]:
                values[row] = {"min": LO - 1 - rng.uniform(0, 50), "max": HI + 1,
                               "finite": float("nan"), "nullable": None,
                               "category": "purple"}[rule]
            start += count
        planted[name] = dict(plan)
        typ = pa.float64() if name.startswith("f") else pa.string()
        columns[name] = pa.array(values, typ, from_pandas=False)
    _write(pa.table(columns), directory, "invalid")
    return planted


def _write(table: Any, directory: Path, kind: str) -> None:
    """Categorical columns as plain strings, and as Arrow dictionaries (pandas categoricals)."""
    import pyarrow.parquet as pq

    pq.write_table(table, directory / f"string_{kind}.parquet")
    for i, name in enumerate(table.column_names):
        if name.startswith("c"):
            table = table.set_column(i, name, table.column(name).dictionary_encode())
    pq.write_table(table, directory / f"dictionary_{kind}.parquet")


def contract() -> Any:
    from keelwork.spec.contract import ContractSection

    fields: list[dict[str, Any]] = [{"name": f"f{i}", "type": "float", "min": LO, "max": HI}
                                    for i in range(N_FLOAT)]
    fields += [{"name": f"c{i}", "type": "category", "categories": CATS[i]}
               for i in range(N_CAT)]
    return ContractSection.model_validate({"inputs": fields, "extra_fields": "reject"})


def pandera_schema(categorical: bool) -> Any:
    import pandera.pandas as pdr

    columns = {f"f{i}": pdr.Column(float, pdr.Check.in_range(LO, HI), nullable=False)
               for i in range(N_FLOAT)}
    columns |= {f"c{i}": pdr.Column("category" if categorical else str,
                                    pdr.Check.isin(CATS[i]), nullable=False)
                for i in range(N_CAT)}
    return pdr.DataFrameSchema(columns)


# --------------------------------------------------------------------------- one process
class PeakRss:
    """Samples the resident set size every millisecond while active."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> int:
        statm = Path("/proc/self/statm").read_text()
        return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.001)

    def __enter__(self) -> PeakRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def child(tool: str, path: Path, repeat: int, objects: bool = False) -> dict[str, Any]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    counts: dict[str, dict[str, int]] = {}
    if tool == "keelwork":
        from keelwork.core.contracts.batch import validate_table
        from keelwork.core.contracts.jit import Jit
        from keelwork.spec.settings import load_settings

        section = contract()
        data, nbytes = table, table.nbytes
        keel_jit = Jit(load_settings().jit)  # one per process, as a long-running validator

        def run() -> None:
            with keel_jit.active():
                report = validate_table(data, section)
            counts.clear()
            for f in report.failures:
                counts.setdefault(f.column, {})[f.rule] = f.count
            if not report.ok:
                report.reasons()  # the quarantine file needs them: part of the work
    else:
        import pandera.errors

        schema = pandera_schema(path.name.startswith("dictionary"))
        data = table.to_pandas()
        del table
        if objects:  # Python str objects, the pandas 2 default for strings
            for name in data.columns:
                if name.startswith("c"):
                    data[name] = data[name].astype(object)
        nbytes = int(data.memory_usage(deep=True).sum())

        def run() -> None:
            counts.clear()
            try:
                schema.validate(data, lazy=True)
            except pandera.errors.SchemaErrors as exc:
                cases = exc.failure_cases
                for column, n in cases.groupby("column").size().items():
                    counts[str(column)] = {"all": int(n)}

    gc.collect()
    base = PeakRss.now()
    started = time.perf_counter()
    run()  # the first call in a fresh process: imports, caches, a compiled kernel if loaded
    first = time.perf_counter() - started
    gc.collect()
    with PeakRss() as rss:  # memory: one round under the sampler (its thread wakes each ms)
        run()
    peak = rss.peak
    gc.collect()
    best = float("inf")
    gc.disable()
    for _ in range(repeat):  # time: rounds alone, nothing else running in the process
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
        gc.collect()
    jit = None
    if tool == "keelwork":
        jit = keel_jit.loaded() is not None
    return {"seconds": best, "first": first, "rows": len(data), "nbytes": nbytes,
            "base_rss": base, "peak_rss": peak, "counts": counts, "jit": jit}


# --------------------------------------------------------------------------- the run
def run_child(tool: str, path: Path, repeat: int, objects: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--data", str(path),
           "--repeat", str(repeat)] + (["--objects"] if objects else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-pandera", action="store_true")
    parser.add_argument("--child", choices=["keelwork", "pandera"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--objects", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.repeat, args.objects)))
        return

    import numpy
    import pyarrow

    tools = ["keelwork"] + ([] if args.skip_pandera else ["pandera"])
    modes = ("dictionary", "string") + (() if args.skip_pandera else ("object",))
    with tempfile.TemporaryDirectory() as tmp:
        planted = build(args.rows, Path(tmp))
        results = {}
        for mode in modes:
            for kind in ("valid", "invalid"):
                for tool in tools:
                    if mode == "object" and tool == "keelwork":  # the same Arrow data
                        results[(mode, tool, kind)] = results[("string", tool, kind)]
                        continue
                    path = Path(tmp) / f"{'string' if mode == 'object' else mode}_{kind}.parquet"
                    results[(mode, tool, kind)] = run_child(tool, path, args.repeat,
                                                            objects=mode == "object")
    versions = f"pyarrow {pyarrow.__version__}, numpy {numpy.__version__}"
    if "pandera" in tools:
        import pandas
        import pandera

        versions += f", pandas {pandas.__version__}, pandera {pandera.__version__}"
    print(f"Batch validation: {args.rows:,} rows x {N_FLOAT} float + {N_CAT} categorical "
          f"columns; best of {args.repeat}")
    print(f"Python {platform.python_version()}, {versions}; {os.cpu_count()} CPUs")
    print(f"command: python benchmarks/validation.py --rows {args.rows} --repeat {args.repeat}")
    problems = []
    for mode in modes:
        print()
        print({"dictionary": "categorical columns as Arrow dictionaries / pandas 'category'",
               "string": "categorical columns as strings (Arrow string / pandas 3 default 'str',"
                         " Arrow-backed)",
               "object": "categorical columns as strings (Arrow string / pandas object dtype, "
                         "the pandas 2 default)"}[mode])
        print(f"{'':26}{'seconds':>9}{'rows/s':>14}{'data MB':>9}{'peak/data':>11}"
              f"{'1st call s':>12}")
        for (m, tool, kind), r in results.items():
            if m != mode:
                continue
            extra = max(0, r["peak_rss"] - r["base_rss"])
            print(f"{tool + ', ' + kind:26}{r['seconds']:9.3f}"
                  f"{r['rows'] / r['seconds']:14,.0f}{r['nbytes'] / 1e6:9.0f}"
                  f"{1 + extra / r['nbytes']:10.2f}x{r['first']:12.3f}"
                  + ("  (compiled kernels loaded)" if r.get("jit") else ""))
        got = results[(mode, "keelwork", "invalid")]["counts"]
        if got != planted:
            problems.append(f"{mode}: keelwork counted {got}, planted {planted}")
        if results[(mode, "keelwork", "valid")]["counts"]:
            problems.append(f"{mode}: keelwork flagged valid data")
        if "pandera" in tools:
            theirs = results[(mode, "pandera", "invalid")]["counts"]
            want = {c: {"all": sum(rules.values())} for c, rules in planted.items()}
            if theirs != want:
                problems.append(f"{mode}: pandera counted {theirs}, planted {want}")
            for kind in ("valid", "invalid"):
                k, p = results[(mode, "keelwork", kind)], results[(mode, "pandera", kind)]
                print(f"ratio, {kind} data: keelwork / pandera rows/s = "
                      f"{p['seconds'] / k['seconds']:.1f}x")
    total = sum(sum(r.values()) for r in planted.values())
    print()
    if problems:
        raise SystemExit("MISMATCH:\n" + "\n".join(problems))
    print(f"planted violations: {total:,} in {len(planted)} columns; keelwork counted every one "
          "exactly, per column and rule" + (", and pandera the same number per column"
                                            if "pandera" in tools else ""))


if __name__ == "__main__":
    main()
