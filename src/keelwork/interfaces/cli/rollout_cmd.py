"""``keel rollout start|status|promote|pause|resume|abort|retry`` and ``keel rollback``.

The commands act on the project's store directly, so they work without a server; a running
server (its rollout controller polls the store every 0.25 s) re-routes traffic at its next poll.
Every transition is recorded in the rollout's events and in the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from keelwork.interfaces.cli.output import (
    JSON_OPTION,
    PROJECT_OPTION,
    console,
    current_settings,
    fit,
    handles_errors,
)

app = typer.Typer(help="Canary, shadow and A/B rollouts with automatic analysis and rollback.",
                  no_args_is_help=True)

_ACTOR = typer.Option(None, "--actor", help="Who acts (default: $KEELWORK_USER, else the OS "
                      "user).")
_REASON = typer.Option("", "--reason", help="Why (recorded with the event).")
_SKIP_TESTS = typer.Option(False, "--skip-tests", help="Go ahead even though the version's "
                           "declared tests (keel test) failed or were not run on it; recorded "
                           "in the event and the audit log.")


@contextmanager
def _ops(project: Path) -> Iterator[Any]:
    from keelwork.service.projects import rollout_ops

    with rollout_ops(project, current_settings()) as ops:
        yield ops


def _who(given: str | None) -> str:
    """Who acts: ``--actor``, else the ``user`` setting (``KEELWORK_USER``), else the OS user."""
    from keelwork.service.projects import actor

    return actor(given, current_settings())


def _section(project: Path) -> Any:
    from keelwork.service.projects import rollout_section

    return rollout_section(project)


def _show(rollout: Any, events: list[Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"rollout": rollout.as_dict(),
                               "events": [e.as_dict() for e in events]}, indent=2))
        return
    console.print(f"rollout {rollout.id} of [bold]{rollout.model}[/bold]: {rollout.strategy} "
                  f"{rollout.champion} -> {rollout.challenger}, [bold]{rollout.phase}[/bold], "
                  f"challenger weight {rollout.weight}% (step {rollout.step + 1}/"
                  f"{len(rollout.steps)}), consecutive failures {rollout.failures}/"
                  f"{rollout.max_failures}")
    from rich.table import Table

    table = Table(title="events")
    for col in ("at (UTC)", "actor", "action", "phase", "weight", "reason"):
        table.add_column(col)
    for e in events:
        table.add_row(_at(e.at), e.actor, e.action, f"{e.from_phase} -> {e.to_phase}",
                      f"{e.weight}%", e.reason)
    console.print(fit(table, drop=("actor",)))
    _show_decisions(events)


#: Decisions shown with their gates by ``keel rollout status`` (the latest; --json: all).
SHOWN_DECISIONS = 20


def _at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def _value(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _show_decisions(events: list[Any]) -> None:
    """Each analysed interval's gates: status, the challenger's and champion's values and the
    threshold (what the events' reasons summarise), latest :data:`SHOWN_DECISIONS`."""
    decided = [e for e in events if e.decision and e.decision.get("gates")]
    if not decided:
        return
    from rich.table import Table

    table = Table(title="decisions (each gate: challenger vs champion and threshold)")
    for col in ("at (UTC)", "action", "gate", "status", "challenger", "champion", "threshold"):
        table.add_column(col, justify="right" if col in ("challenger", "champion",
                                                         "threshold") else "left")
    for e in decided[-SHOWN_DECISIONS:]:
        for i, g in enumerate(e.decision["gates"]):
            status = {"fail": "[red]fail[/]", "pass": "[green]pass[/]"}.get(
                g.get("status"), f"[yellow]{g.get('status')}[/]")
            table.add_row(_at(e.at) if i == 0 else "", e.action if i == 0 else "",
                          str(g.get("gate")), status, _value(g.get("challenger")),
                          _value(g.get("champion")), _value(g.get("threshold")))
    console.print(fit(table, drop=("action",)))
    if len(decided) > SHOWN_DECISIONS:
        console.print(f"{len(decided) - SHOWN_DECISIONS} earlier decision(s) not shown "
                      f"(--json lists every one)", highlight=False)


@app.command("start")
@handles_errors
def start(name: str = typer.Argument(..., help="The model."),
          to: int = typer.Option(..., "--to", help="The challenger version."),
          strategy: str | None = typer.Option(None, "--strategy",
                                              help="canary, shadow or ab (default: keel.yaml)"),
          interval: str | None = typer.Option(None, "--interval",
                                              help="Analysis interval, e.g. 30s (default: "
                                                   "keel.yaml)"),
          from_version: int | None = typer.Option(None, "--from", help="The champion version "
                                                  "(default: the champion alias)"),
          project: Path = PROJECT_OPTION, actor: str | None = _ACTOR,
          skip_tests: bool = _SKIP_TESTS, as_json: bool = JSON_OPTION) -> None:
    """Start a rollout of NAME to version --to.

    When keel.yaml declares tests for NAME (models[].tests), version --to must have passed
    them ('keel test NAME@VERSION') unless --skip-tests.
    """
    with _ops(project) as ops:
        rollout = ops.start(name, to, _section(project), strategy=strategy, interval=interval,
                            from_version=from_version, actor=_who(actor),
                            skip_tests=skip_tests)
        _show(rollout, ops.store.events(rollout.id), as_json)


@app.command("status")
@handles_errors
def status(name: str = typer.Argument(..., help="The model."),
           project: Path = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The model's latest rollout and every decision (with the gates' observed values)."""
    with _ops(project) as ops:
        rollout, events = ops.status(name)
        _show(rollout, events, as_json)


def _action(action: str, doc: str) -> None:
    @handles_errors
    def command(name: str = typer.Argument(..., help="The model."),
                project: Path = PROJECT_OPTION, actor: str | None = _ACTOR,
                reason: str = _REASON, as_json: bool = JSON_OPTION) -> None:
        with _ops(project) as ops:
            rollout = ops.act(name, action, actor=_who(actor),
                              reason=reason or f"{action} by hand")
            _show(rollout, ops.store.events(rollout.id), as_json)

    command.__doc__ = doc
    app.command(action)(command)


_action("pause", "Hold the current weights; analysis stops until resume.")
_action("resume", "Continue a paused rollout (its failure count starts again).")
_action("abort", "Send all traffic back to the champion.")


@app.command("retry")
@handles_errors
def retry(name: str = typer.Argument(..., help="The model."),
          project: Path = PROJECT_OPTION, actor: str | None = _ACTOR,
          reason: str = _REASON, skip_tests: bool = _SKIP_TESTS,
          as_json: bool = JSON_OPTION) -> None:
    """Run an aborted rollout again from its first step, against the champion now.

    When keel.yaml declares tests for NAME (models[].tests), the challenger must have passed
    them ('keel test NAME@VERSION') unless --skip-tests, as for start.
    """
    with _ops(project) as ops:
        rollout = ops.act(name, "retry", actor=_who(actor), reason=reason or "retry by hand",
                          skip_tests=skip_tests)
        _show(rollout, ops.store.events(rollout.id), as_json)


@app.command("promote")
@handles_errors
def promote(name: str = typer.Argument(..., help="The model."),
            force: bool = typer.Option(False, "--force", help="Promote even a version whose "
                                       "earlier rollout was aborted (the warning is recorded "
                                       "in the event and the audit log)."),
            project: Path = PROJECT_OPTION, actor: str | None = _ACTOR,
            reason: str = _REASON, skip_tests: bool = _SKIP_TESTS,
            as_json: bool = JSON_OPTION) -> None:
    """Make the challenger the champion now (moves the champion alias).

    A version whose earlier rollout was aborted is refused with a warning unless --force;
    one whose declared tests failed or were not run on it, unless --skip-tests.
    """
    with _ops(project) as ops:
        current, _ = ops.status(name)
        warning = ops.aborted_warning(current)
        if warning and force:
            console.print(f"[yellow]warning:[/yellow] {warning}; promoting it (--force), the "
                          "warning is recorded in the audit log", highlight=False)
        rollout = ops.act(name, "promote", actor=_who(actor),
                          reason=reason or "promote by hand", force=force,
                          skip_tests=skip_tests)
        _show(rollout, ops.store.events(rollout.id), as_json)


@handles_errors
def rollback(name: str = typer.Argument(..., help="The model."),
             project: Path = PROJECT_OPTION, actor: str | None = _ACTOR,
             reason: str = _REASON) -> None:
    """Serve the previous champion again (aborts an active rollout).

    The previous champion is the one before the current in the alias history, skipping
    versions rolled back from or aborted; with none left, exit code 2 and nothing changes.
    """
    with _ops(project) as ops:
        version = ops.rollback(name, actor=_who(actor), reason=reason)
    console.print(f"{name}: champion is version {version}")
