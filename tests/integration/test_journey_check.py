"""``keel check`` as a user runs it on a fresh project: what is missing fails with its fix,
the fixes make those items pass (SLO rules through the real promtool, runbooks written by
``keel runbook``), the four drills pass on a scratch copy (the user's store untouched), a
rollback that leaves the canary serving fails the rollback drill, and a tampered audit chain
fails the gate and the backup drill. ``--no-drills`` reports the drills as not checked, never
as passed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import keelwork.service.drills.rollback as rollback
from alert_sinks import HttpSink, SmtpSink, free_port
from journey import keel, set_section
from keelwork.adapters.stores.store_copy import table_counts
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.launch_check import run_checks
from keelwork.spec import load_spec
from keelwork.spec.settings import load_settings
from live_server import ADDER_SPEC, FIXTURES

COST = """\
cost: {cpu_hour: 0.05, per_1k_predictions: 0.02, monthly_budget: 500}
"""
SLOS = """\
slos:
  latency_p99_ms: 250
  error_rate: 0.01
"""


def _cli(project: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = keel(project, "check", "--json", *args, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {i["name"]: i for i in json.loads(done.stdout)["items"]}


def _now(project: Path, drills: bool = False) -> dict[str, Any]:
    return {i.name: i for i in run_checks(load_spec(project / "keel.yaml"), load_settings(),
                                          drills=drills)}


def test_check_a_fresh_project_then_fix_it(tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    project = tmp_path
    (project / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES)
                                       + "monitoring: {reference: reference.csv}\n")
    (project / "reference.csv").write_text(
        "a,b\n" + "".join(f"{i / 10},{i % 7}\n" for i in range(200)))
    with TestClient(build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False,
                                     monitor_interval_s=0)):
        pass  # the first start registers the model and stores its monitoring reference
    code, items = _cli(project, "--no-drills", "--no-notify")
    assert code == 1
    assert {n: i["status"] for n, i in items.items()} == {
        "contract": "pass", "reference": "pass", "slo_rules": "fail", "cost_alerts": "fail",
        "owners": "fail", "alert_routes": "not_checked", "runbooks": "not_checked", "audit": "pass",
        "enforced": "pass",
        "rollback_drill": "not_checked", "kill_drill": "not_checked",
        "backup_restore": "not_checked", "pii_scan": "not_checked"}
    assert "declare slos" in items["slo_rules"]["fix"]
    assert "cost.monthly_budget" in items["cost_alerts"]["fix"]
    assert "service.on_call.contact" in items["owners"]["fix"]
    assert items["enforced"]["facts"]["enforced_by"]["contract.inputs[].name"]
    assert items["kill_drill"]["detail"] == "skipped by --no-drills"
    assert items["alert_routes"]["detail"] == "skipped by --no-notify"

    # the owners' mail goes through an SMTP server, pages to a webhook: both on loopback
    mail, pager = SmtpSink(), HttpSink()
    request.addfinalizer(mail.stop)
    request.addfinalizer(pager.stop)
    spec = project / "keel.yaml"
    text = spec.read_text().replace(
        "owners: [t@example.com]}",
        f"owners: [t@example.com], on_call: {{contact: '{pager.url('/page?token=s3cret')}'}}}}")
    text += f"alerts: {{smtp: {{smarthost: '127.0.0.1:{mail.port}'}}}}\n"
    spec.write_text(set_section(set_section(text, "slos", SLOS), "cost", COST))
    now = _now(project)
    assert now["owners"].status == "pass"
    assert now["cost_alerts"].status == "pass", now["cost_alerts"]
    assert now["cost_alerts"].facts == {"evaluated_by": "server"}
    routes = now["alert_routes"]
    assert routes.status == "pass", routes
    assert sorted(t["kind"] for t in routes.facts["targets"]) == ["email", "webhook"]
    assert all(t["acknowledged"] for t in routes.facts["targets"])
    # each target got the test alert, then its resolution, and nothing shows the URL's token
    assert [(m["To"], m["Subject"].split("]")[0]) for _, m in mail.received()] == [
        ("t@example.com", "[FIRING"), ("t@example.com", "[RESOLVED")]
    assert [(path, b["alerts"][0]["labels"]["alertname"], b["alerts"][0]["status"])
            for _, path, b in pager.received()] == [
        ("/page?token=s3cret", "KeelworkTestNotification", "firing"),
        ("/page?token=s3cret", "KeelworkTestNotification", "resolved")]
    assert pager.received()[0][2]["alerts"][0]["labels"]["severity"] == "page"
    assert "s3cret" not in json.dumps(routes.facts)
    promtool = shutil.which("promtool") is not None
    assert now["slo_rules"].status == ("pass" if promtool else "not_checked"), now["slo_rules"]
    assert now["runbooks"].status == "fail"
    assert now["runbooks"].fix.startswith("keel cost runbook --out")
    assert " ; keel runbook --out" in now["runbooks"].fix

    keel(project, "runbook", "--out", "runbooks")
    missing = _now(project)["runbooks"]  # the budget's alerts still have none
    assert missing.status == "fail" and missing.fix.startswith("keel cost runbook --out")
    assert all(n.startswith("KeelworkCost") for n in missing.facts["missing"]), missing
    keel(project, "cost", "runbook", "--out", "runbooks")
    store = table_counts(f"sqlite:///{project / '.keel' / 'keel.db'}")
    code, items = _cli(project)  # the drills too, on a scratch copy
    assert {n: i["status"] for n, i in items.items() if i["status"] != "pass"} == (
        {} if promtool else {"slo_rules": "not_checked"}), items
    assert code == 0
    assert items["rollback_drill"]["facts"]["failed"] == 0
    assert items["rollback_drill"]["facts"]["canary_last_answer_after_rollback_ms"] < 1000
    assert items["kill_drill"]["facts"]["lost"] == 0
    assert items["kill_drill"]["facts"]["acknowledged"] >= 20
    assert items["backup_restore"]["facts"]["rows"] > 0
    assert items["pii_scan"]["facts"]["files_scanned"] >= 1
    # the drills ran on the copy: the user's store is as it was (no canary, no kill -9 rows)
    assert table_counts(f"sqlite:///{project / '.keel' / 'keel.db'}") == store
    # not checked is no failure (code 0 above had promtool absent) unless asked
    assert _cli(project, "--no-drills", "--strict")[0] == 1
    table = keel(project, "check", "--no-drills", check=False).stdout
    assert "not checked" in table and "rollback_drill" in table
    # the same checklist as a page: every item, its result, the verdict
    page = project / "check.html"
    keel(project, "check", "--no-drills", "--no-notify", "--html", str(page), check=False)
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Launch check: live" in html
    assert all(f'id="{name}"' in html for name in items)
    assert "skipped by --no-notify" in html and "<script" not in html

    # a contact that does not answer fails the routes, naming the target, never its URL
    dead = free_port()
    spec.write_text(spec.read_text().replace(pager.url("/page?token=s3cret"),
                                             f"http://127.0.0.1:{dead}/page?token=s3cret"))
    code, items = _cli(project, "--no-drills")
    assert code == 1 and items["alert_routes"]["status"] == "fail"
    assert "1 of 2 alert targets did not acknowledge" in items["alert_routes"]["detail"]
    assert "live-on-call:webhook:" in items["alert_routes"]["detail"]
    assert "s3cret" not in json.dumps(items["alert_routes"])
    spec.write_text(spec.read_text().replace(f"http://127.0.0.1:{dead}/page?token=s3cret",
                                             pager.url("/page?token=s3cret")))

    with sqlite3.connect(project / ".keel" / "keel.db") as db:  # someone edits history
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    audit = _now(project)["audit"]
    assert audit.status == "fail" and audit.facts["first_bad_seq"] == 1
    from keelwork.service.drills.backup import backup_drill

    restored = backup_drill(f"sqlite:///{project / '.keel' / 'keel.db'}")
    assert restored.status == "fail" and "audit chain does not verify" in restored.detail

    # a budget Prometheus watches: its rules and their tests go through the real promtool
    spec.write_text(set_section(spec.read_text(), "cost", COST.replace(
        "monthly_budget: 500}", "monthly_budget: 500, evaluated_by: prometheus}")))
    cost = _now(project)["cost_alerts"]
    assert cost.status == ("pass" if promtool else "not_checked"), cost
    if promtool:
        assert cost.facts == {"evaluated_by": "prometheus"}


def test_a_rollback_that_leaves_the_canary_serving_fails_the_drill(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drill watches traffic, not the store: a rollback that changes nothing (here: one
    that never reaches the store) is seen as the canary still answering."""
    (tmp_path / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES)
                                        + "monitoring: {reference: reference.csv}\n")
    (tmp_path / "reference.csv").write_text(
        "a,b\n" + "".join(f"{i / 10},{i % 7}\n" for i in range(50)))
    monkeypatch.setattr(rollback, "roll_back", lambda ops, name: None)
    resolved = load_spec(tmp_path / "keel.yaml")
    item = rollback.rollback_drill(resolved, resolved.storage_url)
    assert item.status == "fail", item
    assert "the canary still answered" in item.detail
    assert item.facts["versions_answering_after_1s"] == ["1", "2"]
