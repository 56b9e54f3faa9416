"""What :class:`keelwork.Project`'s methods return: typed results, reports that render in Jupyter.

Each report has ``to_dict()`` (JSON-ready, what the matching ``keel ... --json`` prints) and
``to_html()``, a self-contained fragment (no script, no external URL) that Jupyter shows through
``_repr_html_``. The HTML is a summary table. :meth:`keelwork.Project.drift` and
:meth:`keelwork.Project.monitor` return the core reports themselves
(:class:`~keelwork.core.monitors.report.DriftReport`,
:class:`~keelwork.core.monitors.report.MonitorReport`), whose HTML is the charted page ``keel
drift --html`` / ``keel monitor run --html`` write.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keelwork.errors import ContractViolation, ErrorDetail

if TYPE_CHECKING:
    from keelwork.core.contracts.batch import BatchReport
    from keelwork.core.registry import ModelVersion

_STYLE = ("<style>.keelwork-report table{border-collapse:collapse;font-size:13px}"
          ".keelwork-report th,.keelwork-report td{border:1px solid #ccc;padding:2px 6px;"
          "text-align:left;vertical-align:top}.keelwork-report .bad{color:#b00020}"
          ".keelwork-report .good{color:#1b5e20}</style>")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple | dict):
        return html.escape(json.dumps(value, default=str)[:200])
    return html.escape(str(value)[:200])


def html_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """An HTML table of ``rows`` (escaped, each cell cut to 200 characters)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(title: str, verdict: str, good: bool, *parts: str) -> str:
    """A report fragment: a title, a verdict line (green or red) and the parts."""
    css = "good" if good else "bad"
    return (f'<div class="keelwork-report">{_STYLE}<h3>{html.escape(title)}</h3>'
            f'<p class="{css}"><b>{html.escape(verdict)}</b></p>{"".join(parts)}</div>')


class _Report:
    """``_repr_html_`` for every report: Jupyter shows ``to_html()``."""

    def to_html(self) -> str:  # pragma: no cover - every report overrides it
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.to_html()


@dataclass(frozen=True)
class Registration:
    """A model version just registered by :meth:`keelwork.Project.register`.

    Attributes:
        model_version: The version record (name, number, runtime, sha256, provenance, ...).
        same_content_as: Earlier versions of the same content (stored once).
        warnings: What did not stop the registration (e.g. the monitoring reference could not
            be built).
    """

    model_version: ModelVersion
    same_content_as: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The model name."""
        return self.model_version.name

    @property
    def version(self) -> int:
        """The new version number."""
        return self.model_version.version

    @property
    def ref(self) -> str:
        """``NAME:VERSION``."""
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """What ``keel models register --json`` prints."""
        return {**self.model_version.as_dict(), "same_content_as": list(self.same_content_as)}


@dataclass(frozen=True)
class ValidationReport(_Report):
    """Every row of a table checked against the contract (:meth:`keelwork.Project.validate`).

    Attributes:
        batch: The core report: per (column, rule) counts, examples and the failing rows.
        excluded: Contract fields that were not checked.
    """

    batch: BatchReport = field(repr=False)
    excluded: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every row passes."""
        return self.batch.ok

    def __bool__(self) -> bool:
        return self.ok

    @property
    def rows(self) -> int:
        """Rows checked."""
        return self.batch.rows

    @property
    def failed_rows(self) -> int:
        """Rows that break at least one rule."""
        return self.batch.failed_rows

    @property
    def passed_rows(self) -> int:
        """Rows that pass every rule."""
        return self.batch.passed_rows

    @property
    def failures(self) -> list[dict[str, Any]]:
        """One entry per (column, rule): count, fraction, message, example rows."""
        return [f.as_dict() for f in self.batch.failures]

    def failing_rows(self) -> list[int]:
        """The 0-based indices of the failing rows, ascending."""
        return [int(i) for i in self.batch.failing_rows()]

    def reasons(self) -> list[str]:
        """One reason per failing row, aligned with :meth:`failing_rows`."""
        return self.batch.reasons()

    def raise_for_failures(self) -> None:
        """Raise when a row fails, as a request breaking the contract would.

        Raises:
            ContractViolation: one detail per (column, rule), ``got`` the first example value.
        """
        if self.ok:
            return
        details = [ErrorDetail(f.column, f.rule, f.examples[0].value if f.examples else None,
                               f.message) for f in self.batch.failures]
        raise ContractViolation(
            f"{self.failed_rows} of {self.rows} rows break the contract: "
            + "; ".join(f"{d.path}: {d.message}" for d in details[:5]), details)

    def to_dict(self) -> dict[str, Any]:
        """What ``keel validate --json`` reports (without the file names)."""
        return {"valid": self.ok, "excluded": list(self.excluded), **self.batch.as_dict()}

    def to_html(self) -> str:
        """A summary: the verdict, then each (column, rule) with its count and examples."""
        rows = [{**f, "fraction": f"{f['fraction']:.1%}",
                 "examples": ", ".join(f"row {e['row']}: {e['value']!r}"
                                       for e in f["examples"][:3])} for f in self.failures]
        verdict = (f"all {self.rows} rows pass" if self.ok else
                   f"{self.failed_rows} of {self.rows} rows fail")
        table = html_table(rows, ("column", "rule", "count", "fraction", "message",
                                  "examples")) if rows else ""
        return html_page("Contract check", verdict, self.ok, table)


@dataclass(frozen=True)
class RolloutStatus(_Report):
    """A model's latest rollout and its events (:class:`keelwork.service.project.Rollouts`).

    Attributes:
        rollout: The rollout (model, champion, challenger, strategy, phase, weight, step, ...).
        events: Every transition, oldest first; automatic decisions carry each gate's values.
    """

    rollout: dict[str, Any]
    events: tuple[dict[str, Any], ...] = ()

    @property
    def phase(self) -> str:
        """``progressing``, ``paused``, ``promoted``, ``aborted``, ``rolled_back``, ..."""
        return str(self.rollout["phase"])

    @property
    def weight(self) -> int:
        """The challenger's share of traffic, in percent."""
        return int(self.rollout["weight"])

    def to_dict(self) -> dict[str, Any]:
        """What ``keel rollout status --json`` prints."""
        return {"rollout": self.rollout, "events": list(self.events)}

    def to_html(self) -> str:
        """The rollout's state, then its events."""
        r = self.rollout
        verdict = (f"{r['strategy']} {r['champion']} -> {r['challenger']}: {r['phase']}, "
                   f"challenger weight {r['weight']}%")
        return html_page(f"Rollout {r.get('id')} of {r['model']}", verdict,
                         r["phase"] not in ("aborted", "rolled_back"),
                         html_table(self.events, ("at", "actor", "action", "from_phase",
                                                  "to_phase", "weight", "reason")))


@dataclass(frozen=True)
class AuditVerification(_Report):
    """The audit chain checked (:meth:`keelwork.service.project.Audit.verify`).

    Attributes:
        ok: Every entry, the head row and the anchors check out.
        checked: Entries read.
        first_bad_seq: The first bad (or missing) entry.
        reason: What is wrong there (edited, deleted, reordered, truncated, ...).
        message: One sentence for a person.
        entry: The bad entry as stored, when it is there.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    message: str = ""
    head: dict[str, Any] | None = None
    entry: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        """What ``keel audit verify --json`` prints."""
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason, "message": self.message, "head": self.head,
                "entry": self.entry}

    def to_html(self) -> str:
        """The verdict and, when broken, the first bad entry."""
        verdict = (f"ok: {self.message}" if self.ok else
                   f"broken at entry {self.first_bad_seq} ({self.reason}): {self.message}")
        part = html_table([self.entry], ("seq", "ts", "actor", "action", "target",
                                         "details")) if self.entry else ""
        return html_page("Audit log", verdict, self.ok, part)


__all__ = ["AuditVerification", "Registration", "RolloutStatus", "ValidationReport",
           "html_page", "html_table"]
