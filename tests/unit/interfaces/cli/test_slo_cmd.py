"""``keel slo rules``, ``keel slo export --format openslo``, ``keel runbook``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from keelwork.interfaces.cli.main import app

SPEC = ("service: {name: iris, owners: [ml@example.com]}\n"
        "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
        "slos: {availability: 0.999, latency_p99_ms: 100, throughput_rps: 2, window: 7d}\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yaml").write_text(SPEC)
    return tmp_path


def _keel(project: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--project", str(project)])
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def _yaml(text: str) -> list[dict[str, object]]:
    return list(YAML(typ="safe", pure=True).load_all(text))


def test_rules_print_every_group(project: Path) -> None:
    [doc] = _yaml(_keel(project, "slo", "rules"))
    assert isinstance(doc["groups"], list)
    assert [g["name"] for g in doc["groups"]] == [
        "keelwork-slo-iris-availability", "keelwork-slo-iris-latency_p99",
        "keelwork-slo-iris-throughput"]


def test_rules_out_writes_rules_tests_and_inhibit_rules(project: Path) -> None:
    out = project / "rules"
    _keel(project, "slo", "rules", "--out", str(out), "--label", "job=keel",
          "--runbook-url", "https://ops.example.com/rb")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["availability.rules.yml", "availability.test.yml", "inhibit_rules.yml",
                     "latency_p99.rules.yml", "latency_p99.test.yml", "throughput.rules.yml",
                     "throughput.test.yml"]
    rules = (out / "availability.rules.yml").read_text()
    assert 'job="keel"' in rules and "https://ops.example.com/rb/Keelwork" in rules
    [inhibit] = _yaml((out / "inhibit_rules.yml").read_text())
    assert isinstance(inhibit["inhibit_rules"], list) and inhibit["inhibit_rules"]
    [test] = _yaml((out / "availability.test.yml").read_text())
    assert test["rule_files"] == ["availability.rules.yml"]


def test_a_bad_label_and_a_spec_without_slos_are_clear_errors(project: Path) -> None:
    assert "NAME=VALUE" in _keel(project, "slo", "rules", "--label", "job", code=2)
    (project / "keel.yaml").write_text(SPEC.split("slos:")[0])
    assert "sets no SLO" in " ".join(_keel(project, "slo", "rules", code=2).split())


def test_openslo_documents_parse_and_carry_the_objectives(project: Path) -> None:
    docs = _yaml(_keel(project, "slo", "export", "--format", "openslo"))
    assert all(d["apiVersion"] == "openslo/v1" for d in docs)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("SLO") == 3 and kinds.count("SLI") == 3 and "Service" in kinds
    assert kinds.count("AlertPolicy") == 6  # three tiers for each ratio SLO
    slos = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "SLO"}  # type: ignore[index]
    avail = slos["iris-availability"]
    assert avail["objectives"] == [{"displayName": "Availability", "target": 0.999}]
    assert avail["timeWindow"] == [{"duration": "7d", "isRolling": True}]
    assert avail["budgetingMethod"] == "Occurrences"
    assert slos["iris-latency-p99"]["objectives"][0]["target"] == 0.99
    assert slos["iris-throughput"]["objectives"][0]["value"] == 2
    names = {d["metadata"]["name"] for d in docs}  # type: ignore[index]
    for spec in slos.values():
        assert spec["indicatorRef"] in names
        assert all(p in names for p in spec["alertPolicies"])
    out = project / "openslo.yaml"
    _keel(project, "slo", "export", "--format", "openslo", "--out", str(out))
    assert _yaml(out.read_text()) == docs


def _parses(argv: list[str], where: Path) -> None:
    """``keel ARGV`` gets past option parsing (it may then fail: ``where`` is no project)."""
    result = CliRunner().invoke(app, [*argv[1:], "--project", str(where)])
    said = " ".join(result.output.split())
    for usage_error in ("No such option", "No such command", "unexpected extra argument",
                        "Missing argument", "Invalid value", "Try 'keel"):
        assert usage_error not in said, (argv, said)


def test_runbooks_one_per_alert_with_real_commands(project: Path) -> None:
    out = project / "runbooks"
    _keel(project, "runbook", "--out", str(out))
    books = sorted(p.name for p in out.iterdir())
    # availability and latency: 3 tiers and no data each; throughput: floor and no data
    assert "KeelworkAvailabilityBurnFast.md" in books and len(books) == 10
    text = (out / "KeelworkAvailabilityBurnFast.md").read_text()
    assert "## Who owns it" in text and "ml@example.com" in text
    commands = [line.strip() for book in out.iterdir()
                for line in book.read_text().splitlines() if line.strip().startswith("keel ")]
    assert commands
    empty = project / "empty"
    empty.mkdir()
    for line in sorted(set(commands)):
        _parses(shlex.split(line), empty)


def test_alerts_link_their_runbook(project: Path) -> None:
    rules = _keel(project, "slo", "rules")
    links = set(re.findall(r"runbook_url: (\S+)", rules))
    _keel(project, "runbook", "--out", str(project / "runbooks"))
    assert links and all((project / link).is_file() for link in links)


def test_serve_names_the_slos_and_how_they_are_evaluated() -> None:
    from keelwork.service.slos import slo_line
    from keelwork.spec.loader import parse_spec

    line = slo_line(parse_spec(SPEC, env={}))
    assert line is not None and line.startswith("SLOs over 7d: availability")
    assert "evaluated by Prometheus with the rules of `keel slo rules`" in line
    assert slo_line(parse_spec(SPEC.split("slos:")[0], env={})) is None


QUALITY = ("service: {name: iris, owners: [ml@example.com]}\n"
           "models: [{name: m, runtime: python, artifact: 'a:b'}]\n"
           "contract: {inputs: [{name: x, type: float}]}\n"
           "slos:\n  availability: 0.999\n  quality:\n"
           "    - {name: refused, metric: violation_rate, objective: 0.01}\n")


def test_quality_slos_get_no_rules_but_a_note_runbooks_and_openslo(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text(QUALITY)
    text = _keel(tmp_path, "slo", "rules")
    assert text.startswith("# quality SLOs (refused) have no Prometheus rules")
    [doc] = _yaml(text)
    assert [g["name"] for g in doc["groups"]] == ["keelwork-slo-iris-availability"]
    said = " ".join(_keel(tmp_path, "slo", "rules", "--out", str(tmp_path / "r")).split())
    assert "note: quality SLOs (refused) have no Prometheus rules" in said
    assert not (tmp_path / "r" / "refused.rules.yml").exists()
    _keel(tmp_path, "runbook", "--out", str(tmp_path / "books"))
    book = (tmp_path / "books" / "KeelworkQualityRefusedBurnFast.md").read_text()
    assert "keel log tail --model m --status rejected -n 50" in book
    docs = _yaml(_keel(tmp_path, "slo", "export", "--format", "openslo"))
    [sli] = [d for d in docs if d["kind"] == "SLI" and "refused" in d["metadata"]["name"]]
    bad = sli["spec"]["ratioMetric"]["bad"]["metricSource"]
    assert bad["type"] == "keelwork" and "refused by the input contract" in bad["spec"][
        "description"]
    [slo] = [d for d in docs if d["kind"] == "SLO" and d["metadata"]["name"] == "iris-refused"]
    assert slo["spec"]["objectives"][0]["target"] == 0.99
