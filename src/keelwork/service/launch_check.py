"""``keel check``: the launch checklist, each item checked for real against a project.

Each item passes, fails with the exact fix, or says why it was not checked (a tool that is not
installed, a drill this version does not run). Checked today:

- ``contract``: keel.yaml declares the inputs every request is checked against;
- ``reference``: every model has a stored monitoring reference (drift and quality need one);
- ``slo_rules``: keel.yaml sets SLOs, their Prometheus rules pass ``promtool check rules`` and
  the generated burn-rate tests pass ``promtool test rules``;
- ``cost_alerts``: keel.yaml sets a monthly budget and something watches it: this server
  (``cost.evaluated_by: server``, with somebody to tell) or Prometheus, whose budget rules
  pass ``promtool check rules`` and their tests ``promtool test rules``;
- ``owners``: alerts have somebody to reach: owners for tickets, an on-call contact for pages;
- ``alert_routes``: a test notification sent to every target of the alert routes (owners,
  on-call, escalation) is delivered and acknowledged by the sink (a 2xx answer, the SMTP
  server's acceptance), followed by its resolution; ``notify=False`` (``--no-notify``) leaves
  it not checked;
- ``runbooks``: every SLO alert's runbook (``keel runbook --out runbooks``) and every budget
  alert's (``keel cost runbook --out runbooks``) is in the project;
- ``audit``: the audit chain verifies against its anchors;
- ``enforced``: every field set in keel.yaml is enforced by a running component (the registry
  of :mod:`keelwork.spec.enforced_by`), named in the details.

The drills (:mod:`keelwork.service.drills`), each on a scratch copy of the project, each
bounded in time and reported as not checked (with the reason) rather than left hanging:

- ``rollback_drill``: a copy of the champion as a canary, rolled back under load;
- ``kill_drill``: ``keel serve`` killed with SIGKILL under load, acknowledged predictions counted;
- ``backup_restore``: the store backed up, restored into a scratch store and compared;
- ``pii_scan``: the raw bytes of the stores scanned for personal data in redacted fields.

``drills=False`` (``keel check --no-drills``) skips them: not checked, never passed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from keelwork.errors import KeelworkError
from keelwork.service.check_item import CheckItem
from keelwork.spec.model import ResolvedSpec
from keelwork.spec.settings import Settings

#: The drills, in the order they run (each on a scratch copy; slow: ``--no-drills``).
DRILLS = ("rollback_drill", "kill_drill", "backup_restore", "pii_scan")


def run_checks(resolved: ResolvedSpec, settings: Settings, *,
               drills: bool = True, notify: bool = True) -> list[CheckItem]:
    """Every item of the checklist, in order (an item that raises fails, with its message).

    Args:
        resolved: The project's keel.yaml.
        settings: The process settings (the store's URL may come from them).
        drills: Run the drills (tens of seconds); without them they are not checked.
        notify: Send the test notifications of ``alert_routes``.
    """
    url = settings.storage_url or resolved.storage_url
    checks: list[tuple[str, Callable[[], CheckItem]]] = [
        ("contract", lambda: _contract(resolved)),
        ("reference", lambda: _reference(resolved)),
        ("slo_rules", lambda: _slo_rules(resolved)),
        ("cost_alerts", lambda: _cost_alerts(resolved)),
        ("owners", lambda: _owners(resolved)),
        ("alert_routes", lambda: _alert_routes(resolved, notify)),
        ("runbooks", lambda: _runbooks(resolved)),
        ("audit", lambda: _audit(resolved, settings)),
        ("enforced", lambda: _enforced(resolved)),
    ]
    if drills:
        checks += _drills(resolved, url)
    out = []
    for name, check in checks:
        try:
            out.append(check())
        except KeelworkError as exc:
            out.append(CheckItem(name, "fail", exc.message, "fix what the message names"))
    if not drills:
        out += [CheckItem(n, "not_checked", "skipped by --no-drills", "keel check (without "
                          "--no-drills)") for n in DRILLS]
    return out


def write_check_html(report: Mapping[str, Any], path: Path) -> None:
    """Write ``report`` (what ``keel check --json`` prints) to ``path`` as a self-contained
    HTML page, atomically.

    Raises:
        OSError: the file cannot be written.
    """
    from keelwork.core.reports.check_html import render_check_html
    from keelwork.service.monitoring import write_report

    write_report(path, render_check_html(report))


def _drills(resolved: ResolvedSpec, url: str) -> list[tuple[str, Callable[[], CheckItem]]]:
    from keelwork.service.drills.backup import backup_drill
    from keelwork.service.drills.kill import kill_drill
    from keelwork.service.drills.pii_scan import pii_scan
    from keelwork.service.drills.rollback import rollback_drill

    return [("rollback_drill", lambda: rollback_drill(resolved, url)),
            ("kill_drill", lambda: kill_drill(resolved, url)),
            ("backup_restore", lambda: backup_drill(url)),
            ("pii_scan", lambda: pii_scan(resolved, url))]


def _contract(resolved: ResolvedSpec) -> CheckItem:
    inputs = resolved.spec.contract.inputs
    if not inputs:
        return CheckItem("contract", "fail", "keel.yaml declares no input contract: requests "
                         "are not checked", "draft one: keel contract draft REFERENCE_DATA")
    outputs = resolved.spec.contract.outputs
    return CheckItem("contract", "pass", f"{len(inputs)} input fields checked on every request"
                     + (f", {len(outputs)} output fields" if outputs else ""),
                     facts={"inputs": len(inputs), "outputs": len(outputs)})


def _reference(resolved: ResolvedSpec) -> CheckItem:
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.monitor_store import MonitorStore

    names = [m.name for m in resolved.spec.models]
    engine = make_engine(resolved.storage_url)
    try:
        store = MonitorStore(engine)
        store.ensure_schema()  # a project never served has no monitoring tables yet
        missing = [n for n in names if store.latest_reference(n) is None]
    finally:
        engine.dispose()
    if missing:
        return CheckItem("reference", "fail", f"no monitoring reference stored for "
                         f"{', '.join(missing)}: drift and quality have nothing to compare with",
                         " ; ".join(f"keel monitor reference --model {n}" for n in missing),
                         {"missing": missing})
    return CheckItem("reference", "pass", f"stored for {', '.join(names)}",
                     facts={"models": names})


def _slo_rules(resolved: ResolvedSpec) -> CheckItem:
    from keelwork.service.slos import slo_rules

    if not _has_slos(resolved):
        return CheckItem("slo_rules", "fail", "keel.yaml sets no SLO: nothing pages anybody "
                         "when the service degrades", "declare slos (latency_p99_ms, "
                         "error_rate, ...) in keel.yaml; see docs/slos.md")
    with tempfile.TemporaryDirectory(prefix="keel-check-") as tmp:
        made = slo_rules(resolved, Path(tmp))
        rules = [str(p) for p in made.files if p.name.endswith(".rules.yml")]
        if not rules:
            return CheckItem("slo_rules", "pass", "quality SLOs only: keel serve evaluates "
                             "them itself (Prometheus cannot join labels)", facts={})
        tests = [str(p) for p in made.files if p.name.endswith(".test.yml")]
        failed = _promtool("slo_rules", rules, tests, tmp, "keel slo rules --out DIR, then "
                           "run promtool on DIR")
    return failed or CheckItem("slo_rules", "pass", f"{len(rules)} SLOs: rules pass promtool "
                               "check rules and their burn-rate tests pass promtool test rules",
                               facts={"rule_files": len(rules)})


def _promtool(item: str, rules: list[str], tests: list[str], cwd: str,
              fix: str) -> CheckItem | None:
    """None when ``promtool check rules`` and ``promtool test rules`` pass on the files; else
    the item, failed (or not checked without promtool)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return CheckItem(item, "not_checked", f"{len(rules)} rule files generated; promtool is "
                         "not installed", "install Prometheus' promtool (Debian: prometheus)",
                         {"rule_files": len(rules)})
    for argv in ([promtool, "check", "rules", *rules], [promtool, "test", "rules", *tests]):
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
        if done.returncode != 0:
            return CheckItem(item, "fail", f"{' '.join(argv[1:3])} failed: "
                             + (done.stdout + done.stderr).strip()[-400:], fix)
    return None


def _cost_alerts(resolved: ResolvedSpec) -> CheckItem:
    from keelwork.service.budget import cost_rules
    from keelwork.service.cost_watch import watches_budget

    cost = resolved.spec.cost
    if cost.monthly_budget is None:
        return CheckItem("cost_alerts", "fail", "keel.yaml sets no cost.monthly_budget: nobody "
                         "is told when costs run away", "set cost prices and "
                         "cost.monthly_budget; see docs/cost.md")
    budget = f"{cost.monthly_budget:g} {cost.currency} a month"
    if cost.evaluated_by == "server":
        if not watches_budget(resolved.spec):
            return CheckItem("cost_alerts", "fail", f"budget {budget}, but its alerts reach "
                             "nobody", "name service.owners (and service.on_call)")
        return CheckItem("cost_alerts", "pass", f"budget {budget}, watched by keel serve every "
                         f"{cost.evaluation_interval}", facts={"evaluated_by": "server"})
    with tempfile.TemporaryDirectory(prefix="keel-check-") as tmp:
        made = cost_rules(resolved, Path(tmp))
        files = [str(p) for p in made.files]
        failed = _promtool("cost_alerts", files[:1], files[1:], tmp, "keel cost rules --out "
                           "DIR, then run promtool on DIR")
    return failed or CheckItem("cost_alerts", "pass", f"budget {budget}: Prometheus rules pass "
                               "promtool check rules and their tests pass promtool test rules",
                               facts={"evaluated_by": "prometheus"})


def _has_slos(resolved: ResolvedSpec) -> bool:
    from keelwork.core.slo import slo_set

    slos = slo_set(resolved.spec)
    return bool(slos.objectives or slos.quality)


def _owners(resolved: ResolvedSpec) -> CheckItem:
    service = resolved.spec.service
    contact = service.on_call.contact if service.on_call is not None else None
    if not service.owners:
        return CheckItem("owners", "fail", "service.owners is empty: tickets reach nobody",
                         "name the owners' contacts in service.owners")
    if not contact:
        return CheckItem("owners", "fail", "no service.on_call.contact: pages reach nobody",
                         "set service.on_call.contact (a webhook, e-mail or Slack URL)")
    return CheckItem("owners", "pass", f"tickets to {len(service.owners)} owner(s), pages to "
                     "the on-call contact", facts={"owners": len(service.owners)})


def _alert_routes(resolved: ResolvedSpec, notify: bool) -> CheckItem:
    from keelwork.service.alerting import send_test_notifications

    if not notify:
        return CheckItem("alert_routes", "not_checked", "skipped by --no-notify",
                         "keel check (without --no-notify), or keel alerts test")
    if not resolved.spec.service.owners:
        return CheckItem("alert_routes", "not_checked", "no owner to send a test notification "
                         "to", "name the owners' contacts in service.owners")
    probes = send_test_notifications(resolved.spec, timeout_s=10.0)
    facts = {"targets": [p.as_dict() for p in probes]}
    bad = [p for p in probes if not p.ok]
    if bad:
        return CheckItem("alert_routes", "fail", f"{len(bad)} of {len(probes)} alert targets "
                         "did not acknowledge a test notification: " + "; ".join(
                             f"{p.target}: {p.error}" for p in bad[:3]),
                         "fix the contact or its receiver in keel.yaml (service.owners, "
                         "service.on_call, alerts), then keel alerts test", facts)
    return CheckItem("alert_routes", "pass", f"a test notification reached each of the "
                     f"{len(probes)} alert targets and was acknowledged", facts=facts)


def _runbooks(resolved: ResolvedSpec) -> CheckItem:
    from keelwork.service.budget import write_budget_runbooks
    from keelwork.service.slos import write_runbooks

    writers = [(w, fix) for w, fix, on in (
        (write_runbooks, "keel runbook", _has_slos(resolved)),
        (write_budget_runbooks, "keel cost runbook",
         resolved.spec.cost.monthly_budget is not None)) if on]
    if not writers:
        return CheckItem("runbooks", "not_checked", "no SLO and no budget, so no alert to write "
                         "a runbook for", "declare slos first")
    folder = resolved.project_dir / "runbooks"
    wanted: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="keel-check-") as tmp:
        for write, fix in writers:
            wanted |= {p.name: fix for p in write(resolved, Path(tmp))}
    missing = sorted(n for n in wanted if not (folder / n).is_file())
    if missing:
        fixes = sorted({wanted[n] for n in missing})
        return CheckItem("runbooks", "fail", f"{len(missing)} of {len(wanted)} alerts have no "
                         f"runbook in {folder}: {', '.join(missing[:5])}",
                         " ; ".join(f"{f} --out {folder}" for f in fixes), {"missing": missing})
    return CheckItem("runbooks", "pass", f"{len(wanted)} alerts, each with its runbook",
                     facts={"runbooks": len(wanted)})


def _audit(resolved: ResolvedSpec, settings: Settings) -> CheckItem:
    from keelwork.service.audit import verify_head

    result, _bad = verify_head(resolved.project_dir, None, settings)
    if not result.ok:
        return CheckItem("audit", "fail", result.message, "keel audit verify shows the entry; "
                         "restore the store from a backup taken before it",
                         {"first_bad_seq": result.first_bad_seq})
    return CheckItem("audit", "pass", f"the chain of {result.checked} entries verifies",
                     facts={"entries": result.checked})


def _enforced(resolved: ResolvedSpec) -> CheckItem:
    from keelwork.spec.enforced_by import DESCRIPTIVE, ENFORCED_BY

    rows = {**ENFORCED_BY, **DESCRIPTIVE}
    set_fields = sorted(_leaves(resolved.spec.model_dump(exclude_unset=True), rows))
    by = {f: rows[f].component for f in set_fields if f in rows}
    missing = [f for f in set_fields if f not in rows]
    if missing:
        return CheckItem("enforced", "fail", f"set but enforced by no component: "
                         f"{', '.join(missing)}", "remove them from keel.yaml",
                         {"unenforced": missing, "enforced_by": by})
    return CheckItem("enforced", "pass", f"all {len(set_fields)} fields set in keel.yaml are "
                     "enforced by a running component", facts={"enforced_by": by})


def _leaves(data: Mapping[str, Any], rows: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The set fields of a keel.yaml document, as the registry names them (``models[].x``);
    a mapping the registry names as one field (a model's runtime ``options``) is one."""
    out: set[str] = set()
    for key, value in data.items():
        path = f"{prefix}{key}"
        items = value if isinstance(value, list) and value and all(
            isinstance(v, dict) for v in value) else None
        if isinstance(value, dict) and value and path not in rows:
            inner = _leaves(value, rows, path + ".")
            out |= inner or {path}
        elif items is not None:
            for item in items:
                out |= _leaves(item, rows, path + "[].")
        else:
            out.add(path)
    return out


__all__ = ["DRILLS", "CheckItem", "run_checks", "write_check_html"]
