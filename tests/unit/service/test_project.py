"""keelwork.Project: the use-cases from Python, on a real store, answering typed reports."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import keelwork
from keelwork.errors import (
    ContractViolation,
    InvalidInputError,
    KeelworkError,
    ModelNotFoundError,
    RegistryError,
    SpecError,
    TransitionError,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

SPEC = """\
service: {{name: project-test, owners: [t@example.com]}}
models:
  - name: adder
    runtime: python
    artifact: "fakes:total"
    options: {{path: "{fx}"}}
contract:
  inputs:
    - {{name: a, type: float, min: 0}}
    - {{name: b, type: integer}}
    - {{name: color, type: category, categories: [red, blue], required: false}}
monitoring:
  reference: reference.jsonl
  windows: [1h]
"""


def _rows(n: int, shift: float = 0.0, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"a": round(rng.uniform(0, 10) + shift, 3), "b": rng.randint(0, 5),
             "color": rng.choice(["red", "blue"])} for _ in range(n)]


@pytest.fixture
def project(tmp_path: Path) -> keelwork.Project:
    (tmp_path / "keel.yaml").write_text(SPEC.format(fx=FIXTURES))
    with (tmp_path / "reference.jsonl").open("w") as fh:
        for row in _rows(300):
            fh.write(json.dumps(row) + "\n")
    return keelwork.Project(tmp_path)


def test_register_a_path_as_the_cli_does_and_the_audit_log_verifies(
        project: keelwork.Project) -> None:
    reg = project.register("fakes:total", "adder", runtime="python",
                           options={"path": str(FIXTURES)}, aliases=["champion"],
                           metrics={"mae": 0.5})
    assert reg.ref == "adder:1" and reg.model_version.aliases == ("champion",)
    assert reg.to_dict()["metrics"] == {"mae": 0.5} and reg.warnings == ()
    assert project.register("fakes:total", "adder", runtime="python",
                            options={"path": str(FIXTURES)}).version == 2
    verdict = project.audit.verify()
    assert verdict.ok and verdict.checked >= 2 and bool(verdict)
    assert "ok" in verdict._repr_html_()
    assert project.audit.head()["seq"] == verdict.checked
    with pytest.raises(RegistryError):
        project.register(project.path / "model.bin", "adder")  # no runtime from the suffix
    with pytest.raises(RegistryError):
        project.register(object(), "adder")


def test_register_a_fitted_sklearn_model_saved_with_skops(project: keelwork.Project) -> None:
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    from fixtures.models import IRIS_FEATURES, iris_data

    x, y = iris_data()
    model = LogisticRegression(max_iter=300).fit(x, y)
    reg = project.register(model, "iris", options={"feature_names": list(IRIS_FEATURES)})
    assert reg.model_version.runtime == "sklearn"
    assert reg.model_version.artifact_uri.endswith("model.skops")
    assert reg.version == 1 and reg.model_version.options["feature_names"] == list(
        IRIS_FEATURES)


def test_register_torch_and_onnx_objects_in_formats_their_runtimes_load(
        project: keelwork.Project) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("skl2onnx")
    from fixtures.models import IRIS_FEATURES, onnx_iris, tiny_net

    options = {"feature_names": list(IRIS_FEATURES)}
    shaped = project.register(tiny_net(), "net", options=options)  # a batch from the names
    assert shaped.model_version.artifact_uri.endswith("model.pt2")
    exported = project.register(tiny_net(), "net", example_input=torch.randn(2, 4))
    assert exported.model_version.artifact_uri.endswith("model.pt2")
    with pytest.raises(RegistryError, match="example_input"):
        project.register(tiny_net(), "net")
    import onnx

    built = onnx_iris(project.path)
    proto = onnx.load(str(built.artifact))
    reg = project.register(proto, "iris-onnx", options=built.options)
    assert reg.model_version.runtime == "onnx"


def test_validate_takes_pandas_arrow_and_polars_alike(project: keelwork.Project) -> None:
    pd = pytest.importorskip("pandas")
    import pyarrow as pa

    good = pd.DataFrame(_rows(50))
    report = project.validate(good)
    assert report.ok and report.rows == 50 and bool(report)
    report.raise_for_failures()
    bad_rows = _rows(10)
    bad_rows[3]["a"] = -2.0
    bad_rows[7]["color"] = "green"
    for data in (pd.DataFrame(bad_rows), pa.Table.from_pylist(bad_rows)):
        report = project.validate(data)
        assert not report.ok and report.failed_rows == 2 and report.failing_rows() == [3, 7]
        assert {(f["column"], f["rule"]) for f in report.failures} == {("a", "min"),
                                                                     ("color", "category")}
        assert report.to_dict()["valid"] is False
        assert "2 of 10 rows fail" in report._repr_html_()
        with pytest.raises(ContractViolation) as raised:
            report.raise_for_failures()
        assert [d.path for d in raised.value.details] == ["a", "color"]
    assert project.validate(pd.DataFrame(bad_rows), exclude=["a", "color"]).ok
    with pytest.raises(SpecError):
        project.validate(good, exclude=["nope"])
    with pytest.raises(InvalidInputError):
        project.validate({"a": [1]})
    polars = pytest.importorskip("polars")
    assert not project.validate(polars.DataFrame(bad_rows)).ok


def test_drift_of_two_tables(project: keelwork.Project) -> None:
    pd = pytest.importorskip("pandas")
    same = project.drift(pd.DataFrame(_rows(400)), pd.DataFrame(_rows(400, seed=1)))
    assert same.drifted == () and bool(same)
    moved = project.drift(pd.DataFrame(_rows(400)), pd.DataFrame(_rows(400, shift=5, seed=1)))
    assert moved.drifted == ("a",) and not moved
    assert moved.to_dict()["summary"]["drifted"] == ["a"]
    assert "drifted" in moved._repr_html_()


def test_monitor_and_rollout_over_served_traffic(project: keelwork.Project) -> None:
    from keelwork.interfaces.http.server import build_server_app

    project.register("fakes:total", "adder", runtime="python",
                     options={"path": str(FIXTURES)}, aliases=["champion"])
    app = build_server_app(project.spec, freeze_gc=False, monitor_interval_s=0)
    with TestClient(app) as http:
        client = keelwork.Client(str(http.base_url), http_client=http)
        for chunk in range(4):
            client.predict("adder", _rows(50, shift=5, seed=chunk))
    report = project.monitor(window="1h", since="2h")
    assert report.model == "adder" and report.drifted
    assert sum(w["predictions"] for w in report.windows) == 200
    page = report.to_html()  # the page keel monitor run --html writes: verdicts per window
    assert "Monitoring: adder" in page and all(
        f"<td>{', '.join(w['drift']['summary']['drifted'])}</td>" in page
        for w in report.windows if w["drift"]["summary"]["drifted"])
    assert report._repr_html_().startswith("<iframe")
    assert report.to_dict()["windows"]

    project.register("fakes:total", "adder", runtime="python",
                     options={"path": str(FIXTURES)})
    status = project.rollout.start("adder", to=2, strategy="canary", actor="me")
    assert status.phase == "progressing" and status.events[0]["actor"] == "me"
    assert project.rollout.pause("adder").phase == "paused"
    assert project.rollout.resume("adder").phase == "progressing"
    assert project.rollout.abort("adder").phase == "aborted"
    with pytest.raises(TransitionError):
        project.rollout.promote("adder")
    assert project.rollout.status("adder").to_dict()["rollout"]["challenger"] == 2
    with pytest.raises(TransitionError):
        project.rollout.rollback("adder")  # no earlier champion
    with pytest.raises(ModelNotFoundError):
        project.rollout.status("nope")


def test_a_project_needs_its_directory_and_spec_where_it_reads_it(tmp_path: Path) -> None:
    with pytest.raises(KeelworkError):
        keelwork.Project(tmp_path / "missing")
    bare = keelwork.Project(tmp_path)
    with pytest.raises(SpecError):
        bare.monitor()
    assert bare.audit.verify().ok  # no store yet: nothing is created by reading
    assert not (tmp_path / ".keel").exists()


def test_audit_verify_checks_the_anchors_as_keel_audit_verify_does(
        project: keelwork.Project) -> None:
    project.register("fakes:total", "adder", runtime="python", options={"path": str(FIXTURES)})
    assert project.audit.verify().ok
    (project.path / ".keel" / "keel.db").unlink()  # the store goes; the anchor file stays
    verdict = keelwork.Project(project.path).audit.verify()
    assert not verdict.ok and verdict.reason == "truncated"


def test_drift_takes_a_saved_profile_and_names_a_bad_text_column(
        project: keelwork.Project, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    from keelwork.core.monitors import profile_table
    from keelwork.errors import MonitorError

    reference = pa.Table.from_pylist(_rows(400))
    saved = tmp_path / "reference-profile.json"
    saved.write_text(json.dumps(profile_table(reference).as_dict()))
    moved = pa.Table.from_pylist(_rows(400, shift=5, seed=1))
    assert project.drift(saved, moved).drifted == ("a",)
    assert project.drift(profile_table(reference), moved).drifted == ("a",)
    with pytest.raises(MonitorError, match="saved profile"):
        project.drift(saved, moved, text=["color"])
    with pytest.raises(MonitorError, match="'review'"):
        project.drift(reference, moved, text=["review"])


def test_validate_runs_under_the_jit_setting(project: keelwork.Project,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pa = pytest.importorskip("pyarrow")
    from keelwork.core.contracts import batch, jit
    from keelwork.spec.settings import load_settings

    seen = []
    real = batch.validate_table

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(jit._ACTIVE.get())
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "validate_table", spy)
    off = keelwork.Project(project.path, settings=load_settings(jit="off"))
    assert off.validate(pa.Table.from_pylist(_rows(10))).ok
    assert len(seen) == 1 and seen[0] is not None and seen[0].mode == "off"
