"""The tests file of keel.yaml's ``models[].tests`` is read with clear errors, and the rollout
gate refuses a version whose tests were not run, failed, or changed since (and nothing else)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.model_test_store import ModelTestStore
from keelwork.errors import SpecError
from keelwork.service.model_tests import gate_on_tests, load_tests, refusal
from keelwork.spec import load_spec

SPEC = """\
kind: keel.yaml
version: 1
service: {name: credit, owners: [ml@example.com]}
models:
  - name: credit
    runtime: sklearn
    tests: tests/credit.yaml
  - name: other
    runtime: sklearn
"""

TESTS = """\
kind: keel-tests
version: 1
tests:
  - {name: overall, kind: slice, data: ref.jsonl, label: status, min: 0.7}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "credit.yaml").write_text(TESTS)
    return tmp_path


def test_the_file_is_read_with_its_digest(project: Path) -> None:
    tests, digest = load_tests(load_spec(project / "keel.yaml"), "credit")
    assert [t.name for t in tests.tests] == ["overall"] and len(digest) == 64


def test_a_model_without_tests_is_told_how_to_declare_them(project: Path) -> None:
    with pytest.raises(SpecError, match=r"set models\[other\]\.tests") as err:
        load_tests(load_spec(project / "keel.yaml"), "other")
    assert err.value.details[0].path == "models[other].tests"


def test_a_missing_file_names_the_field(project: Path) -> None:
    (project / "tests" / "credit.yaml").unlink()
    with pytest.raises(SpecError, match=r"models\[credit\]\.tests: the tests file") as err:
        load_tests(load_spec(project / "keel.yaml"), "credit")
    assert err.value.details[0].rule == "file_missing"


@pytest.mark.parametrize(("body", "path"), [
    ("tests:\n  - {name: s, kind: slice, data: r.csv, label: y}\n", "tests[0].slice.min"),
    ("tests:\n  - {name: i, kind: invariance, field: f, typos: 1}\n", "tests[0].invariance"),
    ("tests:\n  - {name: d, kind: directional, inputs: [{x: 1}], field: x}\n",
     "tests[0].directional"),
    ("tests:\n  - {name: m, kind: minimum, cases: [{input: {x: 1}}]}\n",
     "tests[0].minimum.cases[0]"),
    ("tests:\n  - {name: m, kind: minimum, cases: [{input: {}, expect_label: 1}]}\n"
     "  - {name: m, kind: minimum, cases: [{input: {}, expect_label: 1}]}\n", "<root>"),
    ("tests:\n  - {name: x, kind: magic}\n", "tests[0]"),
])
def test_schema_errors_name_their_path(project: Path, body: str, path: str) -> None:
    (project / "tests" / "credit.yaml").write_text(body)
    with pytest.raises(SpecError) as err:
        load_tests(load_spec(project / "keel.yaml"), "credit")
    assert path in [d.path for d in err.value.details], err.value.details


def test_the_gate_refuses_until_a_passing_run_of_todays_tests(project: Path) -> None:
    resolved = load_spec(project / "keel.yaml")
    engine = make_engine(f"sqlite:///{project / 'keel.db'}")
    store = ModelTestStore(engine)
    store.ensure_schema()
    gate = gate_on_tests(resolved, engine)
    assert gate is not None
    assert gate("other", 1) is None  # declares no tests: never gated
    assert "were not run on it; run 'keel test credit@2' first" in (gate("credit", 2) or "")
    _, digest = load_tests(resolved, "credit")
    store.put("credit", 2, actor="t", passed=False, tests_digest=digest,
              body={"results": [{"name": "overall", "passed": False}]})
    assert "failed its declared tests (overall)" in (gate("credit", 2) or "")
    store.put("credit", 2, actor="t", passed=True, tests_digest=digest, body={"results": []})
    assert gate("credit", 2) is None
    assert store.get("credit", 2) is not None and store.get("credit", 3) is None
    (project / "tests" / "credit.yaml").write_text(TESTS.replace("0.7", "0.8"))
    assert "changed since they were run on it" in (refusal(resolved, engine, "credit", 2)
                                                    or "")
    assert gate_on_tests(None, engine) is None


def test_the_digest_covers_the_data_files_the_tests_read(project: Path) -> None:
    resolved = load_spec(project / "keel.yaml")
    (project / "ref.jsonl").write_text('{"x": 1, "status": "good"}\n')
    _, before = load_tests(resolved, "credit")
    (project / "ref.jsonl").write_text('{"x": 1, "status": "bad"}\n')
    _, after = load_tests(resolved, "credit")
    assert before != after
