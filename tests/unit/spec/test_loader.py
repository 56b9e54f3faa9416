"""keel.yaml: validation with paths and lines, env interpolation, JSON Schema, defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from keelwork.errors import SpecError
from keelwork.interfaces.cli.main import app
from keelwork.spec import json_schema, load_spec, parse_spec

GOOD = """\
service:
  name: fraud
  owners: [risk@example.com]
models:
  - name: scorer
    runtime: sklearn
    artifact: model.skops
contract:
  inputs:
    - {name: amount, type: float, min: 0}
    - {name: country, type: category, categories: [DE, FR]}
"""

# Five planted mistakes, one per line marked with the expected path.
FIVE_MISTAKES = """\
service:
  name: fraud
  owners: [risk@example.com]
  on_cal: {contact: pager}
models:
  - name: scorer
    runtime: sklern
    artifact: model.skops
    batching:
      max_batch_size: 0
contract:
  inputs:
    - name: amount
      type: flaot
    - name: country
      type: category
guards:
  max_concurrency: 0
"""


def test_good_spec_loads_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(GOOD)
    r = load_spec(tmp_path / "keel.yaml")
    assert r.spec.service.name == "fraud"
    assert r.spec.models[0].aliases == ["champion"]
    assert r.spec.storage.durability == "sync"
    assert r.storage_url == f"sqlite:///{tmp_path.resolve() / '.keel' / 'keel.db'}"
    assert r.spool_dir == tmp_path.resolve() / ".keel" / "spool"
    # directories resolve to their keel.yaml
    assert load_spec(tmp_path).path == r.path


def test_every_problem_is_reported_with_path_and_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(FIVE_MISTAKES, source="keel.yaml")
    got = {(d.path, d.line) for d in info.value.details}
    assert got == {
        ("service.on_cal", 4),
        ("models[0].runtime", 7),
        ("models[0].batching.max_batch_size", 10),
        ("contract.inputs[0].type", 14),
        ("contract.inputs[1]", 15),
        ("guards.max_concurrency", 18),
    }, info.value.message
    msg = info.value.message
    assert "models[0].runtime (line 7): must be one of sklearn, onnx" in msg
    assert "got 'sklern'" in msg
    assert "did you mean 'on_call'" in msg
    assert "needs a non-empty 'categories' list" in msg


def test_env_interpolation_and_defaults() -> None:
    text = GOOD + "storage:\n  url: ${DB_URL}\n  spool_dir: ${SPOOL:-/tmp/spool}\n"
    spec = parse_spec(text, env={"DB_URL": "postgresql://u:secret@h/db"})
    assert spec.storage.url == "postgresql://u:secret@h/db"
    assert spec.storage.spool_dir == "/tmp/spool"
    with pytest.raises(SpecError) as info:
        parse_spec(text, env={})
    (detail,) = info.value.details
    assert (detail.path, detail.rule, detail.line) == ("storage.url", "env_missing", 13)


@pytest.mark.parametrize(("text", "rule"), [
    ("", "empty"),
    ("- a\n- b\n", "type"),
    ("service: [unclosed\n", "yaml_syntax"),
])
def test_not_a_spec_at_all(text: str, rule: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert info.value.details[0].rule == rule


def test_cross_field_rules() -> None:
    bad = GOOD.replace("artifact: model.skops", "artifact: model.skops\n    fallback: nope")
    with pytest.raises(SpecError, match="fallback names 'nope'"):
        parse_spec(bad)
    ranged = GOOD.replace("min: 0}", "min: 5, max: 1}")
    with pytest.raises(SpecError, match=r"min \(5.0\) is greater than max"):
        parse_spec(ranged)


def test_json_schema_rejects_unknown_keys_and_validates_the_example() -> None:
    import jsonschema
    from ruamel.yaml import YAML

    schema = json_schema()
    assert schema["additionalProperties"] is False
    doc = YAML(typ="safe", pure=True).load(GOOD)
    jsonschema.validate(doc, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "extra": 1}, schema)


def test_template_spec_is_valid() -> None:
    from importlib import resources

    text = resources.files("keelwork.templates").joinpath("sentiment/keel.yaml").read_text()
    spec = parse_spec(text)
    assert spec.contract.inputs[0].name == "review"
    # keel init says who may call what, rather than leaving it to defaults (issue 13 item 9).
    guards = yaml.safe_load(text)["guards"]
    assert {"require_api_key", "feedback_auth", "relabel"} <= guards.keys()
    assert spec.guards.feedback_auth == "auto"


def test_tabular_template_spec_is_valid_and_declares_mixed_nullable_inputs() -> None:
    from importlib import resources

    text = resources.files("keelwork.templates").joinpath("tabular/keel.yaml").read_text()
    spec = parse_spec(text)
    types = {f.type for f in spec.contract.inputs}
    assert {"integer", "float", "category"} <= types
    assert {f.name for f in spec.contract.inputs if f.nullable} >= {"income", "home"}
    assert spec.models[0].options["input"] == "mixed" and spec.models[0].options["trusted"]
    assert spec.monitoring.labels.column == "status" and spec.monitoring.labels.positive == "bad"


runner = CliRunner()


def test_cli_validate_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    r = runner.invoke(app, ["spec", "validate", str(good)])
    assert r.exit_code == 0, r.output
    assert "valid" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(FIVE_MISTAKES)
    r = runner.invoke(app, ["spec", "validate", str(bad)])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert "models[0].runtime (line 7)" in r.output
    r = runner.invoke(app, ["spec", "validate", str(bad), "--json"])
    problems = json.loads(r.output)["problems"]
    assert len(problems) == 6 and all("line" in p for p in problems)
    r = runner.invoke(app, ["spec", "validate", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "no such file" in r.output


def test_cli_schema_is_json() -> None:
    r = runner.invoke(app, ["spec", "schema"])
    assert r.exit_code == 0
    assert json.loads(r.output)["title"] == "keel.yaml"


def test_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "keel.yaml"
    p.write_bytes(b"service:\n  name: \xff\xfe\n")
    with pytest.raises(SpecError, match=r"not UTF-8 text .*line 2"):
        load_spec(p)


def _laughs(levels: int) -> str:
    """A 'billion laughs' keel.yaml: valid (options take any data), 10**levels strings."""
    lines = ['service: {name: x, owners: [a@example.com]}', "models:", "  - name: m",
             "    runtime: python", "    artifact: 'a:b'", "    options:",
             '      a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"      a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [5, 10])
def test_alias_expansion_past_the_bound_is_refused_at_once(levels: int) -> None:
    import time

    started = time.monotonic()
    with pytest.raises(SpecError) as err:
        parse_spec(_laughs(levels), source="keel.yaml", env={})
    assert time.monotonic() - started < 2.0
    (detail,) = err.value.details
    assert detail.rule == "yaml_alias_expansion" and detail.got == 10_000
    assert detail.path.startswith("models[0].options.a") and detail.line is not None
    assert "YAML aliases" in err.value.message and "10000 nodes" in err.value.message


def test_a_moderate_use_of_anchors_and_merge_keys_still_loads() -> None:
    text = _laughs(2) + """\
  - &base
    name: n1
    runtime: python
    artifact: 'a:b'
    batching: &batching {max_batch_size: 8, max_wait_ms: 1}
  - <<: *base
    name: n2
  - {name: n3, runtime: python, artifact: 'a:b', batching: *batching}
"""
    spec = parse_spec(text, env={})
    assert [m.name for m in spec.models] == ["m", "n1", "n2", "n3"]
    assert spec.models[3].batching.max_batch_size == 8
    assert len(spec.models[0].options["a2"]) == 10


def test_a_label_gate_must_fit_the_task_the_output_contract_names() -> None:
    regression = GOOD + "  outputs:\n    - {name: progression, type: float}\n"
    with pytest.raises(SpecError, match=r"min_accuracy does not fit a regression model") as e:
        parse_spec(regression + "rollout:\n  gates: {min_accuracy: 0.8}\n")
    assert e.value.details[0].rule == "gate_task"
    assert parse_spec(regression + "rollout:\n  gates: {max_mae: 60, max_rmse: 75, "
                      "max_relative_mae_increase: 0.1}\n").rollout.gates.max_mae == 60
    classifier = GOOD + ("  outputs:\n    - {name: label, type: category, "
                         "categories: [ok, fraud]}\n")
    with pytest.raises(SpecError, match=r"max_mae does not fit a classification model"):
        parse_spec(classifier + "rollout:\n  gates: {max_mae: 1.0}\n")
    assert parse_spec(classifier + "rollout:\n  gates: {min_accuracy: 0.9}\n")
    # No output contract: the spec alone cannot tell (keel spec validate asks the runtime).
    assert parse_spec(GOOD + "rollout:\n  gates: {min_accuracy: 0.9}\n")


def test_cli_validate_asks_the_runtime_when_the_contract_is_silent(tmp_path: Path) -> None:
    pytest.importorskip("skops")
    import skops.io as sio
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    sio.dump(Ridge().fit(x[["bmi", "bp"]], y), tmp_path / "model.skops")
    spec = ("service: {name: diab, owners: [t@example.com]}\n"
            "models: [{name: diab, runtime: sklearn, artifact: model.skops}]\n"
            "rollout:\n  gates: GATE\n")
    path = tmp_path / "keel.yaml"
    path.write_text(spec.replace("GATE", "{min_accuracy: 0.8}"))
    r = runner.invoke(app, ["spec", "validate", str(path)])
    assert r.exit_code == 2, r.output
    assert "min_accuracy does not fit model 'diab', a regression model" in r.output
    r = runner.invoke(app, ["spec", "validate", str(path), "--json"])
    assert json.loads(r.output)["problems"][0]["path"] == "rollout.gates.min_accuracy"
    path.write_text(spec.replace("GATE", "{max_mae: 60}"))
    r = runner.invoke(app, ["spec", "validate", str(path)])
    assert r.exit_code == 0, r.output


def test_interpolated_values_are_masked_in_every_message() -> None:
    """Issue 13 item 12: a secret from ${VAR} never appears in a spec error."""
    text = GOOD + ("storage:\n  url: ${KEEL_DB_URL}\n  durability: ${KEEL_DUR}\n"
                   "  log_inputs: ${KEEL_LOG}\n")
    env = {"KEEL_DB_URL": "postgresql://admin:S3cretPW_pg@db/keel", "KEEL_DUR": "S3cretPW_dur",
           "KEEL_LOG": "S3cretPW_log"}
    with pytest.raises(SpecError) as info:
        parse_spec(text, env=env)
    shown = str(info.value) + json.dumps([d.as_dict() for d in info.value.details])
    assert "S3cretPW" not in shown
    (detail,) = [d for d in info.value.details if d.path == "storage.durability"]
    assert detail.got == "${KEEL_DUR}" and "${KEEL_DUR}" in detail.message


def test_a_storage_path_is_a_sqlite_file_of_the_project(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(GOOD + "storage: {url: data/keel.db}\n")
    assert load_spec(tmp_path).storage_url == f"sqlite:///{tmp_path.resolve() / 'data/keel.db'}"


def test_check_alias_expansion_counts_shared_nodes_not_the_file() -> None:
    from keelwork.spec.loader import check_alias_expansion

    big = {"rows": [[i, i + 1] for i in range(20_000)]}  # large but no alias: accepted
    check_alias_expansion(big, "big.yaml")
    shared = ["lol"] * 10
    for _ in range(6):
        shared = [shared] * 10
    with pytest.raises(SpecError) as err:
        check_alias_expansion({"a": shared}, "laughs.yaml")
    assert err.value.details[0].rule == "yaml_alias_expansion"


def test_a_field_nothing_enforces_yet_is_refused_not_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Checked with an entry put there for the test (as a field whose component is missing
    # would be), so that it holds whichever real fields are still refused.
    from keelwork.spec import enforcement

    monkeypatch.setitem(enforcement.NOT_ENFORCED, ("server", "tracing"), "no tracer yet")
    monkeypatch.setitem(enforcement._NEUTRAL, ("server", "tracing"), (False,))
    text = ("service: {name: s, owners: [a@example.com]}\n"
            "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
            "server: {tracing: true}\n")
    with pytest.raises(SpecError) as err:
        parse_spec(text, env={})
    [detail] = err.value.details
    assert (detail.path, detail.rule, detail.line) == ("server.tracing", "not_enforced", 3)
    assert "not enforced by this version" in detail.message
    assert parse_spec(text.replace("true", "false"), env={}).server.tracing is False


def test_server_workers_is_accepted_now_that_keel_serve_runs_them() -> None:
    # Enforced by `keel serve` (tests/integration/test_serve_workers.py).
    spec = parse_spec("service: {name: s, owners: [a@example.com]}\n"
                      "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
                      "server: {workers: 4}\n", env={})
    assert spec.server.workers == 4


def test_on_call_escalation_must_reach_someone_and_needs_the_server_to_deliver() -> None:
    # service.on_call's contact and escalation must be reachable ('#x' needs a slack
    # receiver); escalation is done by keel serve's own delivery, so pages that Prometheus
    # and Alertmanager deliver cannot be escalated: refused rather than silently ignored.
    base = "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
    with pytest.raises(SpecError) as err:
        parse_spec("service: {name: s, owners: [a@b.c], on_call: {contact: '#x'}}\n" + base,
                   env={})
    assert [(d.path, d.rule) for d in err.value.details] == [
        ("service.on_call.contact", "contact_unreachable")]
    with pytest.raises(SpecError) as err:
        parse_spec("service: {name: s, owners: [a@b.c], on_call: {contact: a@b.c, "
                   "escalation: '#lead'}}\n" + base, env={})
    assert [(d.path, d.rule) for d in err.value.details] == [
        ("service.on_call.escalation", "contact_unreachable")]
    with pytest.raises(SpecError) as err:
        parse_spec("service: {name: s, owners: [a@b.c], on_call: {contact: a@b.c, "
                   "escalation: b@b.c}}\n" + base
                   + "slos: {availability: 0.99, evaluated_by: prometheus}\n", env={})
    [detail] = err.value.details
    assert (detail.path, detail.rule, detail.line) == (
        "service.on_call.escalation", "escalation_needs_server", 1)
    assert "slos.evaluated_by: prometheus" in detail.message
    with pytest.raises(SpecError) as err:
        parse_spec("service: {name: s, owners: [a@b.c], on_call: {contact: a@b.c, "
                   "escalation: b@b.c, escalate_after: soon}}\n" + base, env={})
    assert err.value.details[0].path == "service.on_call.escalate_after"
    spec = parse_spec("service: {name: s, owners: [a@b.c], on_call: {contact: a@b.c, "
                      "escalation: b@b.c, escalate_after: 10m}}\n" + base, env={})
    assert spec.service.on_call is not None
    assert (spec.service.on_call.escalation, spec.service.on_call.escalate_after) == (
        "b@b.c", "10m")
    spec = parse_spec("service: {name: s, owners: [a@b.c]}\n" + base
                      + "guards: {pii_redaction: false, rate_limit: null}\nserver: {workers: 1}\n"
                      + "slos: {latency_p99_ms: null}\n", env={})
    assert spec.retention.predictions_days is None  # no default promise of deletion
