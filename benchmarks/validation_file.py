"""Read + validate one Parquet file: keelwork's `keel validate` path against pandas + Pandera.

The file is benchmarks/validation.py's 1M-row table with its categories as plain strings
(``string_valid.parquet``, built here in a temporary folder). keelwork reads it as
`keel validate` does (``read_data``: category columns stay dictionary-encoded as Parquet stores
them) and validates it; the competitor is what a pandas 3 user runs: ``pd.read_parquet`` then
Pandera's ``validate(lazy=True)`` with the equivalent schema. Also shown: keelwork reading the
categories as plain strings (before this path existed). Best of ``--repeat`` per step, one
process, interleaved; no compiled kernels (no active ``Jit``), so the comparison does not
depend on them.

Run: ``python benchmarks/validation_file.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import validation as V


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import pandas as pd

    from keelwork.adapters.data.tables import read_data
    from keelwork.core.contracts.batch import validate_table

    section, schema = V.contract(), V.pandera_schema(False)
    categories = [f"c{i}" for i in range(V.N_CAT)]
    best: dict[str, list[float]] = {}

    def keep(name: str, read: float, check: float) -> None:
        b = best.setdefault(name, [float("inf"), float("inf")])
        b[0], b[1] = min(b[0], read), min(b[1], check)

    with tempfile.TemporaryDirectory() as tmp:
        V.build(args.rows, Path(tmp))
        path = Path(tmp) / "string_valid.parquet"
        for _ in range(args.repeat):
            for name, dictionary in (("keelwork (keel validate)", categories),
                                     ("keelwork, categories as strings", [])):
                t0 = time.perf_counter()
                table = read_data(path, None, dictionary=dictionary)
                t1 = time.perf_counter()
                report = validate_table(table, section)
                keep(name, t1 - t0, time.perf_counter() - t1)
                assert report.ok
            t0 = time.perf_counter()
            frame = pd.read_parquet(path)
            t1 = time.perf_counter()
            schema.validate(frame, lazy=True)
            keep("pandas read_parquet + Pandera", t1 - t0, time.perf_counter() - t1)
    print(f"{args.rows:,} rows x {V.N_FLOAT} float + {V.N_CAT} text categories, one Parquet "
          f"file; best of {args.repeat}")
    print(f"{'':34}{'read ms':>9}{'validate ms':>13}{'total ms':>10}")
    for name, (read, check) in best.items():
        print(f"{name:34}{read * 1e3:9.0f}{check * 1e3:13.0f}{(read + check) * 1e3:10.0f}")
    ours, theirs = best["keelwork (keel validate)"], best["pandas read_parquet + Pandera"]
    print(f"ratio, read + validate: keelwork / pandas + Pandera rows/s = "
          f"{sum(theirs) / sum(ours):.1f}x")


if __name__ == "__main__":
    main()
