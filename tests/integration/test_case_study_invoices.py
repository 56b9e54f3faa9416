"""The document-automation case study as a user runs it (docs/case-studies.md, Document automation):
eight real invoices with gold fields (invoice2data 0.4.0, tests/fixtures/invoices), text by
``pdftotext -layout``; a plain Python extraction model registered in a fresh project and served
with an output contract whose confidence floors route low-confidence answers to the review
queue; a (simulated) reviewer corrects the flagged fields; the gold fields arrive later as
labels; ``keel monitor fields`` reads per-field accuracy. Prints the before/after figures the
docs quote (run with ``-s``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from journey import keel
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.case_studies.invoices import (
    confidence_floors,
    correction,
    flagged,
    load_invoices,
    outcome,
    values,
)
from keelwork.spec import load_spec

INVOICES = Path(__file__).resolve().parents[1] / "fixtures" / "invoices"
FIELDS = ("issuer", "amount", "date", "invoice_number", "currency")
SPEC = """\
service: {name: invoices, owners: [ap@example.com]}
models:
  - name: invoices
    runtime: python
contract:
  inputs:
    - {name: text, type: text, max_length: 200000}
  outputs:
    - {name: issuer, type: string, nullable: true}
    - {name: amount, type: float, nullable: true}
    - {name: date, type: string, nullable: true}
    - {name: invoice_number, type: string, nullable: true}
    - {name: currency, type: string, nullable: true, min_length: 3, max_length: 3}
    - {name: issuer_confidence, type: float, min: 0.8, max: 1}
    - {name: amount_confidence, type: float, min: 0.8, max: 1}
    - {name: date_confidence, type: float, min: 0.8, max: 1}
    - {name: invoice_number_confidence, type: float, min: 0.8, max: 1}
    - {name: currency_confidence, type: float, min: 0.8, max: 1}
review:
  budget_per_day: 3
  random_share: 0
  guards: [output_contract]
"""


def _need_pdftotext() -> None:
    if shutil.which("pdftotext") is None:
        why = "pdftotext is not installed (Debian: apt-get install poppler-utils)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)


def _pct(tally: dict[str, Any]) -> str:
    return f"{tally['right']}/{tally['labelled']} = {100 * tally['accuracy']:.1f}%"


def test_invoice_extraction_with_review_of_low_confidence_fields(tmp_path: Path) -> None:
    _need_pdftotext()
    invoices = load_invoices(INVOICES)
    assert len(invoices) == 8 and sum(len(i.gold) for i in invoices) == 39
    (tmp_path / "keel.yaml").write_text(SPEC)
    keel(tmp_path, "spec", "validate")
    keel(tmp_path, "models", "register", "invoices",
         "keelwork.core.extraction.invoices:extract", "--runtime", "python")
    resolved = load_spec(tmp_path / "keel.yaml")
    floors = confidence_floors(resolved.spec.contract)
    assert floors == dict.fromkeys(FIELDS, 0.8)

    # Serve, and extract the eight invoices.
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        got = client.post("/v1/models/invoices:predict",
                          json={"instances": [{"text": i.text} for i in invoices]})
        assert got.status_code == 200, got.text
        body = got.json()
        answers: list[dict[str, Any]] = body["predictions"]
        ids: list[str] = body["prediction_ids"]
        # An answer under a confidence floor is answered, with a warning naming the field.
        warned = {w["path"] for w in body.get("warnings", [])}
        for i, answer in enumerate(answers):
            for field in flagged(answer, floors):
                assert f"predictions[{i}].{field}_confidence" in warned
    routed = [i for i, a in enumerate(answers) if flagged(a, floors)]
    assert routed, "some answer should fall under a confidence floor"

    # The review queue takes the flagged answers first (guard output_contract).
    filled = json.loads(keel(tmp_path, "review", "fill", "--json").stdout)
    assert filled["queued"].get("guard") == min(len(routed), 3)
    by_id = {pid: i for i, pid in enumerate(ids)}
    finals = [values(a) for a in answers]
    reviewed = [False] * len(answers)
    while True:
        item = keel(tmp_path, "review", "next", "--reviewer", "clerk", "--json", check=False)
        if item.returncode != 0:
            break
        queued = json.loads(item.stdout)
        i = by_id[queued["prediction_id"]]
        assert queued["reason"] == "guard:output_contract" and i in routed
        # The simulated reviewer: the flagged fields set to their gold values.
        label = correction(queued["outputs"], invoices[i].gold, floors)
        keel(tmp_path, "review", "label", queued["prediction_id"], json.dumps(label),
             "--reviewer", "clerk")
        finals[i], reviewed[i] = label, True
    assert sum(reviewed) == min(len(routed), 3)
    # The verdicts are labels: per-field accuracy of the model against its reviewers.
    seen = json.loads(keel(tmp_path, "monitor", "fields", "--json").stdout)
    assert seen["labelled"] == sum(reviewed) and seen["predictions"] == len(invoices)

    # Later the gold fields arrive as labels (POST /v1/feedback), for every invoice.
    with TestClient(build_server_app(resolved, freeze_gc=False)) as client:
        fed = client.post("/v1/feedback", json={"labels": [
            {"prediction_id": pid, "label": inv.gold} for pid, inv in zip(ids, invoices,
                                                                          strict=True)]})
        assert fed.status_code == 200, fed.text
    monitored = json.loads(keel(tmp_path, "monitor", "fields", "--json").stdout)
    golds = [i.gold for i in invoices]
    result = outcome(answers, finals, golds, reviewed=reviewed, floors=floors)
    # keel monitor fields reads the log and the labels; it agrees with the answers scored
    # against the gold fields directly.
    assert monitored["labelled"] == len(invoices)
    assert monitored["fields"] == result["before"]["fields"]
    assert monitored["overall"] == result["before"]["overall"]
    before, after = result["before"], result["after"]
    # Review only changes flagged fields, and corrects every wrong one it sees.
    assert after["overall"]["right"] - before["overall"]["right"] == \
        result["corrected_fields"] == result["flagged_wrong"]
    assert before["overall"]["accuracy"] >= 0.7  # the extractor's floor on this sample

    print("\ndocument automation, invoice2data 0.4.0 sample "
          f"({result['documents']} invoices, {result['gold_fields']} gold fields)")
    print(f"{'field':16}{'model alone':>18}{'after review':>18}")
    for field in FIELDS:
        print(f"{field:16}{_pct(before['fields'][field]):>18}"
              f"{_pct(after['fields'][field]):>18}")
    print(f"{'all fields':16}{_pct(before['overall']):>18}{_pct(after['overall']):>18}")
    print(f"reviewed {result['reviewed_documents']} of {result['documents']} invoices "
          f"(budget 3 a day); {result['flagged_fields']} flagged fields checked, "
          f"{result['flagged_wrong']} of them wrong and corrected; "
          f"{result['confident_errors']} wrong fields above their floor were not routed")
