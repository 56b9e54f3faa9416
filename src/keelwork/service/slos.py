"""The SLO use-cases: ``keel slo rules``, ``keel slo export``, ``keel runbook``, and the line
``keel serve`` logs about the SLOs.

What to write comes from :mod:`keelwork.core.slo`; here it becomes files (each written
atomically: ``NAME.partial``, renamed at the end).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelwork.adapters.data.atomic import write_text_atomic
from keelwork.core.slo import inhibit_rules, rule_groups, slo_set
from keelwork.core.slo.objectives import SloSet
from keelwork.core.slo.openslo import openslo_documents
from keelwork.core.slo.promtest import promtool_tests
from keelwork.core.slo.runbooks import runbooks
from keelwork.errors import ErrorDetail, SpecError
from keelwork.spec.model import KeelSpec, ResolvedSpec

log = logging.getLogger("keelwork.slo")

#: The file of the Alertmanager inhibit rules that ``keel slo rules --out`` writes.
INHIBIT_FILE = "inhibit_rules.yml"


def dump_yaml(*docs: Any) -> str:
    """YAML text of ``docs`` (several: one ``---``-separated stream), block style."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    buf = io.StringIO()
    if len(docs) == 1:
        yaml.dump(docs[0], buf)
    else:
        yaml.dump_all(list(docs), buf)
    return buf.getvalue()


def _slos(spec: KeelSpec) -> SloSet:
    slos = slo_set(spec)
    if not slos.objectives and not slos.quality:
        raise SpecError(
            "keel.yaml sets no SLO: add a 'slos' section (availability, error_rate, "
            "latency_p99_ms, throughput_rps or quality) first.",
            [ErrorDetail("slos", "slos_missing", None, "no SLO is set")])
    return slos


@dataclass
class RulesOutput:
    """What ``keel slo rules`` made: the text (without ``--out``) or the files written."""

    text: str = ""
    files: list[Path] = field(default_factory=list)
    #: Why some SLOs have no rules (the quality SLOs), or None.
    note: str | None = None


def quality_note(slos: SloSet) -> str | None:
    """What ``keel slo rules`` says of the quality SLOs: the server evaluates them (their
    events join the prediction log with labels, which Prometheus cannot see)."""
    if not slos.quality:
        return None
    names = ", ".join(o.key for o in slos.quality)
    return (f"quality SLOs ({names}) have no Prometheus rules: their events join the "
            "prediction log with the labels, which Prometheus cannot see, so keel serve "
            "evaluates and notifies them itself, even with slos.evaluated_by: prometheus")


def slo_rules(resolved: ResolvedSpec, out: Path | None = None, *,
              labels: Mapping[str, str] | None = None,
              runbook_base: str = "runbooks") -> RulesOutput:
    """Prometheus rules for the SLOs of keel.yaml.

    Args:
        resolved: The spec.
        out: A folder to write, per SLO, ``<slo>.rules.yml`` and its ``promtool test rules``
            file ``<slo>.test.yml``, and the Alertmanager ``inhibit_rules.yml``. None: return
            every rule group as one YAML text.
        labels: Label matchers added to every metric selector (``job=keel``).
        runbook_base: Folder path or URL the alerts' ``runbook_url`` starts with.

    Raises:
        SpecError: keel.yaml sets no SLO.
    """
    slos = _slos(resolved.spec)
    docs = rule_groups(slos, labels=labels, runbook_base=runbook_base)
    note = quality_note(slos)
    if out is None:
        head = f"# {note}\n" if note else ""
        return RulesOutput(text=head + dump_yaml(
            {"groups": [g for d in docs.values() for g in d["groups"]]}), note=note)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for o in slos.objectives:
        rules, test = out / f"{o.key}.rules.yml", out / f"{o.key}.test.yml"
        write_text_atomic(rules, dump_yaml(docs[o.key]))
        write_text_atomic(test, dump_yaml(promtool_tests(
            slos, o, rules.name, labels=labels, runbook_base=runbook_base)))
        files += [rules, test]
    inhibit = out / INHIBIT_FILE
    write_text_atomic(inhibit, "# Alertmanager: merge into alertmanager.yml (keel slo rules)\n"
                      + dump_yaml({"inhibit_rules": inhibit_rules(resolved.spec)}))
    return RulesOutput(files=[*files, inhibit], note=note)


def openslo(resolved: ResolvedSpec, out: Path | None = None) -> str:
    """The SLOs as OpenSLO v1 documents (one YAML stream), written to ``out`` when given.

    Raises:
        SpecError: keel.yaml sets no SLO.
    """
    text = dump_yaml(*openslo_documents(_slos(resolved.spec)))
    if out is not None:
        if out.parent != Path():
            out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, text)
    return text


def write_runbooks(resolved: ResolvedSpec, out: Path) -> list[Path]:
    """One Markdown runbook per SLO alert, ``<out>/<AlertName>.md``.

    Raises:
        SpecError: keel.yaml sets no SLO.
    """
    return write_markdown(runbooks(_slos(resolved.spec)), out)


def write_markdown(books: Mapping[str, str], out: Path) -> list[Path]:
    """Each text of ``books`` written atomically as ``<out>/<name>.md`` (the runbooks of the
    SLO and budget alerts)."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in books.items():
        path = out / f"{name}.md"
        write_text_atomic(path, text)
        files.append(path)
    return files


def slo_line(spec: KeelSpec, every_s: float | None = None) -> str | None:
    """One line naming the SLOs and how they are evaluated (None without SLOs).

    Args:
        spec: The keel.yaml.
        every_s: Seconds between the server's own evaluations when it runs them
            (:mod:`keelwork.service.slo_watch`); None: Prometheus evaluates them.
    """
    slos = slo_set(spec)
    if not slos.objectives and not slos.quality:
        return None
    names = ", ".join(f"{o.key} ({o.statement.split(' (')[0]})" for o in slos.objectives)
    quality = ", ".join(o.key for o in slos.quality)
    if not slos.objectives:
        where = (f"evaluated by this server every {every_s:g} s" if every_s is not None
                 else "not evaluated: nobody to notify (service.owners, service.on_call)")
        return f"quality SLOs over {slos.window}: {quality}; {where}"
    extra = ""
    if quality:
        extra = (f"; quality SLOs ({quality}) evaluated by this server every {every_s:g} s"
                 if every_s is not None else f"; quality SLOs ({quality}) not evaluated: "
                 "nobody to notify")
    if every_s is not None and spec.slos.evaluated_by == "server":
        return (f"SLOs over {slos.window}: {names}; evaluated by this server every "
                f"{every_s:g} s; for Prometheus, `keel slo rules`{extra}")
    return (f"SLOs over {slos.window}: {names}; evaluated by Prometheus with the rules of "
            f"`keel slo rules`{extra}")


def announce_slos(spec: KeelSpec) -> str | None:
    """Log :func:`slo_line` (what ``keel serve`` does at start) and return it."""
    from keelwork.service.slo_watch import evaluates_slos, interval_s

    line = slo_line(spec, interval_s(spec) if evaluates_slos(spec) else None)
    if line is not None:
        log.info("%s", line)
    return line
