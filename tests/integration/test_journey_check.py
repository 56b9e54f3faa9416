"""``keel check`` as a user runs it on a fresh project: what is missing fails with its fix,
the fixes make those items pass (SLO rules through the real promtool, runbooks written by
``keel runbook``), a tampered audit chain fails the gate, and the drills this version does not
run are reported as not checked, never as passed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from journey import keel, set_section
from keelwork.interfaces.http.server import build_server_app
from keelwork.service.launch_check import run_checks
from keelwork.spec import load_spec
from keelwork.spec.settings import load_settings
from live_server import ADDER_SPEC, FIXTURES

SLOS = """\
slos:
  latency_p99_ms: 250
  error_rate: 0.01
"""


def _cli(project: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = keel(project, "check", "--json", *args, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {i["name"]: i for i in json.loads(done.stdout)["items"]}


def _now(project: Path) -> dict[str, Any]:
    return {i.name: i for i in run_checks(load_spec(project / "keel.yaml"), load_settings())}


def test_check_a_fresh_project_then_fix_it(tmp_path: Path) -> None:
    project = tmp_path
    (project / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES)
                                       + "monitoring: {reference: reference.csv}\n")
    (project / "reference.csv").write_text(
        "a,b\n" + "".join(f"{i / 10},{i % 7}\n" for i in range(200)))
    with TestClient(build_server_app(load_spec(project / "keel.yaml"), freeze_gc=False,
                                     monitor_interval_s=0)):
        pass  # the first start registers the model and stores its monitoring reference
    code, items = _cli(project)
    assert code == 1
    assert {n: i["status"] for n, i in items.items()} == {
        "contract": "pass", "reference": "pass", "slo_rules": "fail", "owners": "fail",
        "runbooks": "not_checked", "audit": "pass", "enforced": "pass",
        "rollback_drill": "not_checked", "kill_drill": "not_checked",
        "backup_restore": "not_checked", "pii_scan": "not_checked"}
    assert "declare slos" in items["slo_rules"]["fix"]
    assert "service.on_call.contact" in items["owners"]["fix"]
    assert items["enforced"]["facts"]["enforced_by"]["contract.inputs[].name"]

    spec = project / "keel.yaml"
    text = spec.read_text().replace(
        "owners: [t@example.com]}",
        "owners: [t@example.com], on_call: {contact: 'https://hooks.example.com/p'}}")
    spec.write_text(set_section(text, "slos", SLOS))
    now = _now(project)
    assert now["owners"].status == "pass"
    promtool = shutil.which("promtool") is not None
    assert now["slo_rules"].status == ("pass" if promtool else "not_checked"), now["slo_rules"]
    assert now["runbooks"].status == "fail"
    assert now["runbooks"].fix.startswith("keel runbook --out")

    keel(project, "runbook", "--out", "runbooks")
    code, items = _cli(project)
    assert items["runbooks"]["status"] == "pass", items["runbooks"]
    assert code == 0  # not checked is no failure ...
    assert _cli(project, "--strict")[0] == 1  # ... unless asked: the drills are not run
    table = keel(project, "check", check=False).stdout
    assert "not checked" in table and "rollback_drill" in table

    with sqlite3.connect(project / ".keel" / "keel.db") as db:  # someone edits history
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    audit = _now(project)["audit"]
    assert audit.status == "fail" and audit.facts["first_bad_seq"] == 1
