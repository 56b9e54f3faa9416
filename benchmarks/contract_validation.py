"""Per-request contract validation: keelwork's compiled validator against pydantic v2.

The contract has 30 fields (20 float with ranges, 5 integer with ranges, 3 category, 2 text with
max_length). Both sides see the same 100k valid records and the same 100k invalid records (each
breaks 1-3 fields: out of range, NaN, a string or boolean for a number, an unknown category, a
too-long text, a missing field, an extra field). The competitor is the equivalent pydantic
model (strict, extra="forbid", constrained fields, Literal categories, max_length), run as
``TypeAdapter(list[Model]).validate_python`` and as per-record ``Model.model_validate``.

On invalid data each side materialises every error as Python objects (keelwork's
``ErrorDetail`` list; pydantic's ``ValidationError.errors()``), and the run checks that both
count the same number of errors. Note that pydantic also builds a model instance per valid
record, which keelwork's ``validate`` does not; ``normalise_batch`` (validate + build one dict
per record) is timed too for that reason.

Each timing is the best of ``--repeat`` rounds with the garbage collector off (as ``timeit``
does); keelwork and pydantic take turns within a round.

Run: ``python benchmarks/contract_validation.py`` (about 30 s; ``-n`` and ``--repeat`` adjust).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from keelwork.core.contracts import compile_contract
from keelwork.spec.contract import ContractSection

CATEGORIES = ("bronze", "silver", "gold", "platinum")
N_FLOAT, N_INT, N_CAT, N_TEXT = 20, 5, 3, 2
F_MIN, F_MAX, I_MIN, I_MAX, TEXT_MAX = -1000.0, 1000.0, 0, 10_000, 200


def build_contract() -> ContractSection:
    """The 30-field contract, as keel.yaml would declare it."""
    fields: list[dict[str, Any]] = []
    fields += [{"name": f"f{i}", "type": "float", "min": F_MIN, "max": F_MAX}
               for i in range(N_FLOAT)]
    fields += [{"name": f"i{i}", "type": "integer", "min": I_MIN, "max": I_MAX}
               for i in range(N_INT)]
    fields += [{"name": f"c{i}", "type": "category", "categories": list(CATEGORIES)}
               for i in range(N_CAT)]
    fields += [{"name": f"t{i}", "type": "text", "max_length": TEXT_MAX} for i in range(N_TEXT)]
    return ContractSection.model_validate({"inputs": fields, "extra_fields": "reject"})


def build_model() -> type[BaseModel]:
    """The equivalent pydantic v2 model."""
    flt = Annotated[float, Field(ge=F_MIN, le=F_MAX, allow_inf_nan=False)]
    integer = Annotated[int, Field(ge=I_MIN, le=I_MAX)]
    cat = Literal["bronze", "silver", "gold", "platinum"]
    text = Annotated[str, Field(max_length=TEXT_MAX)]
    defs: dict[str, Any] = {f"f{i}": (flt, ...) for i in range(N_FLOAT)}
    defs.update({f"i{i}": (integer, ...) for i in range(N_INT)})
    defs.update({f"c{i}": (cat, ...) for i in range(N_CAT)})
    defs.update({f"t{i}": (text, ...) for i in range(N_TEXT)})
    model: type[BaseModel] = create_model(
        "Record", __config__=ConfigDict(strict=True, extra="forbid"), **defs)
    return model


WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "café", "naïve")


def valid_record(rng: random.Random) -> dict[str, Any]:
    rec: dict[str, Any] = {f"f{i}": rng.uniform(F_MIN, F_MAX) for i in range(N_FLOAT)}
    rec.update({f"i{i}": rng.randint(I_MIN, I_MAX) for i in range(N_INT)})
    rec.update({f"c{i}": rng.choice(CATEGORIES) for i in range(N_CAT)})
    rec.update({f"t{i}": " ".join(rng.choices(WORDS, k=rng.randint(1, 20)))
                for i in range(N_TEXT)})
    return rec


def _break(rec: dict[str, Any], rng: random.Random) -> None:
    """Break one field of ``rec``; each break is one error for both validators."""
    kind = rng.randrange(8)
    if kind == 0:
        rec[f"f{rng.randrange(N_FLOAT)}"] = F_MAX * 2
    elif kind == 1:
        rec[f"f{rng.randrange(N_FLOAT)}"] = float("nan")
    elif kind == 2:
        rec[f"f{rng.randrange(N_FLOAT)}"] = "12.5"
    elif kind == 3:
        rec[f"i{rng.randrange(N_INT)}"] = rng.choice([True, -5, 3.0])
    elif kind == 4:
        rec[f"c{rng.randrange(N_CAT)}"] = "copper"
    elif kind == 5:
        rec[f"t{rng.randrange(N_TEXT)}"] = "x" * (TEXT_MAX + 1)
    elif kind == 6:
        rec.pop(f"f{rng.randrange(N_FLOAT)}", None)
    else:
        rec[f"extra{rng.randrange(3)}"] = 1


def invalid_record(rng: random.Random) -> dict[str, Any]:
    rec = valid_record(rng)
    for _ in range(rng.randint(1, 3)):
        _break(rec, rng)
    return rec


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def best(fns: list[Callable[[], Any]], repeat: int) -> list[tuple[float, Any]]:
    """Best wall time of each of ``fns`` over ``repeat`` rounds, and its result.

    The functions take turns within each round, so that a burst of load elsewhere on the
    machine hits both competitors alike.
    """
    times: list[list[float]] = [[] for _ in fns]
    results: list[Any] = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            elapsed, results[i] = _timed(fn)
            times[i].append(elapsed)
    return [(min(ts), r) for ts, r in zip(times, results, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="records per data set")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, repeat = args.n, args.repeat

    rng = random.Random(args.seed)
    valid = [valid_record(rng) for _ in range(n)]
    invalid = [invalid_record(rng) for _ in range(n)]
    validator = compile_contract(build_contract())
    model = build_model()
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]

    def kw_batch(data: list[dict[str, Any]]) -> int:
        return len(validator.validate_batch(data))

    def kw_single(data: list[dict[str, Any]]) -> int:
        return sum(len(validator.validate(r, i)) for i, r in enumerate(data))

    def kw_normalise(data: list[dict[str, Any]]) -> int:
        return len(validator.normalise_batch(data))

    def pd_adapter(data: list[dict[str, Any]]) -> int:
        try:
            adapter.validate_python(data)
        except ValidationError as e:
            return len(e.errors(include_url=False))
        return 0

    def pd_single(data: list[dict[str, Any]]) -> int:
        errors = 0
        for r in data:
            try:
                model.model_validate(r)
            except ValidationError as e:
                errors += len(e.errors(include_url=False))
        return errors

    print(f"python {platform.python_version()}, pydantic {pydantic.VERSION}, "
          f"{platform.machine()}; {n} records x 30 fields, best of {repeat}")
    rows: list[tuple[Any, ...]] = []
    for label, kw, pd in (("batch", kw_batch, pd_adapter), ("per record", kw_single, pd_single)):
        results = []
        for data in (valid, invalid):
            (t_kw, e_kw), (t_pd, e_pd) = best([partial(kw, data), partial(pd, data)], repeat)
            if e_kw != e_pd:
                raise SystemExit(f"error counts differ ({label}): keelwork {e_kw}, "
                                 f"pydantic {e_pd}")
            results += [t_kw / n * 1e6, t_pd / n * 1e6]
        rows.append((label, *results))
    [(t_norm, _)] = best([partial(kw_normalise, valid)], repeat)
    n_errors = kw_batch(invalid)

    print(f"invalid set: {n_errors} errors in {n} records (same count from both)")
    print(f"{'us/record':<28}{'keelwork':>10}{'pydantic':>10}{'ratio':>8}")
    for label, kv, pv, ki, pi in rows:
        api = ("validate_batch / TypeAdapter(list[M])" if label == "batch"
               else "validate / model_validate")
        print(f"{api}")
        print(f"  {'valid':<26}{kv:>10.2f}{pv:>10.2f}{kv / pv:>8.2f}")
        print(f"  {'invalid':<26}{ki:>10.2f}{pi:>10.2f}{ki / pi:>8.2f}")
    print(f"normalise_batch (valid)     {t_norm / n * 1e6:>10.2f}")
    print("ratio = keelwork time / pydantic time (below 1: keelwork is faster)")


if __name__ == "__main__":
    main()
