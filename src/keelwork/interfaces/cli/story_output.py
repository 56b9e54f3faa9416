"""How ``keel demo --story`` tells the sentiment story in a terminal: a rule per step, a line per
thing that happened, Rich progress bars while traffic flows, and the table of numbers at the end
(:mod:`keelwork.service.case_studies.sentiment` runs the story)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from keelwork.interfaces.cli.output import console

if TYPE_CHECKING:
    from keelwork.service.case_studies.sentiment import Narration, StoryResult


@contextmanager
def rich_narration() -> Iterator[Narration]:
    """A :class:`~keelwork.service.case_studies.sentiment.Narration` printing to the console, with a
    progress bar per long task (removed when the task is done)."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from keelwork.service.case_studies.sentiment import Narration

    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bars:

        def step(title: str) -> None:
            bars.console.rule(escape(title))

        def say(text: str) -> None:
            bars.console.print(escape(text), highlight=False, soft_wrap=True)

        def progress(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bars.add_task(escape(task), total=total or None)
            bars.update(tasks[task], completed=done, total=total or None)
            if total and done >= total:
                bars.remove_task(tasks.pop(task))

        yield Narration(step=step, say=say, progress=progress)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.1f}%"


def print_numbers(result: StoryResult) -> None:
    """The measured numbers beside the seed's claim, as a table."""
    from rich.table import Table

    from keelwork.service.case_studies.sentiment import SEED_CLAIM

    table = Table("held-out tweets (never trained on or reviewed)", "version 1",
                  "version 2", title="sentiment: accuracy before and after the loop")
    table.add_row("airline (the training topic)", _pct(result.v1.get("home_test")),
                  _pct(result.v2.get("home_test")))
    table.add_row("other topics (the shift)", _pct(result.v1.get("shifted_test")),
                  _pct(result.v2.get("shifted_test")))
    table.add_row("other topics, retrained on as many random labels instead", "",
                  _pct(result.v2.get("shifted_test_random_labels")))
    table.add_row("the seed's claim (not measured here)", _pct(SEED_CLAIM[0]),
                  _pct(SEED_CLAIM[1]))
    console.print(table)
    took = sum(result.seconds.values())
    console.print(f"{result.review.get('labelled', 0)} reviewed labels; rollout "
                  f"{result.rollout.get('phase', 'not started')}; {took:.0f} s in all",
                  highlight=False)


__all__ = ["print_numbers", "rich_narration"]
