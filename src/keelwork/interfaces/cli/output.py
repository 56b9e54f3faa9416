"""Shared console helpers for the CLI: one place that turns errors into messages and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from keelwork.spec.settings import Settings

from keelwork.errors import KeelworkError

console = Console()
err_console = Console(stderr=True)

#: Exit code for bad input (spec, data, arguments): the user must change something.
EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])

#: Below this terminal width, tables leave out the columns their command marks as low-value.
NARROW_WIDTH = 100


#: Words up to this long stay on one line in :func:`fit`'s tables; longer ones fold.
MAX_UNBROKEN = 16

#: Data files at least this big get a progress bar while they are read.
PROGRESS_MIN_BYTES = 8 << 20

#: The ``--project DIR`` option every store-backed command takes.
PROJECT_OPTION = typer.Option(Path(), "--project", "-p", help="Project directory (holds "
                              "keel.yaml and .keel/).", file_okay=False)
#: The ``--json`` option of commands that print a result.
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _plain(cell: object) -> str:
    """A cell's text without markup (cells are markup strings or Rich Text)."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        if "[" not in cell:
            return cell
        from rich.errors import MarkupError

        try:
            return Text.from_markup(cell).plain
        except MarkupError:
            return cell
    return ""


def fit(table: Table, *, drop: Sequence[str] = (), width: int | None = None) -> RenderableType:
    """Keep a table readable in a narrow terminal without ever cutting a cell short.

    Rich's default ends a word too long for its column with an ellipsis, which can cut off the
    very part of a reason that says what went wrong. Here every column folds instead (the rest
    of the word continues on the next line), below :data:`NARROW_WIDTH` the ``drop`` columns
    (by header) are left out, and the title is printed above the table at the terminal's full
    width rather than squeezed into the table's.

    Args:
        table: The filled table.
        drop: Headers of columns worth less than the room they take in a narrow terminal.
        width: The terminal width (default: the console's).

    Returns:
        What to print: the table, after its title when it has one.
    """
    from rich.console import Group
    from rich.text import Text

    width = console.width if width is None else width
    if width < NARROW_WIDTH:
        # Columns named in ``drop`` and columns with nothing in them give their room away.
        table.columns = [c for c in table.columns if str(c.header) not in drop
                         and (table.row_count == 0
                              or any(_plain(cell).strip() for cell in c.cells))]
    for column in table.columns:
        column.overflow = "fold"
        # Fold long values, but never a short word (a header, a date, a number) in two.
        words = [w for cell in (column.header, *column.cells) for w in _plain(cell).split()]
        column.min_width = min(max((len(w) for w in words), default=1), MAX_UNBROKEN)
    if table.title is None:
        return table
    title = table.title
    table.title = None
    heading = title if isinstance(title, Text) else Text.from_markup(
        str(title), style="table.title", overflow="fold")
    return Group(heading, table)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True,
                      soft_wrap=True)
    return typer.Exit(code)


def handles_errors(func: F) -> F:
    """Turn a KeelworkError into a one-paragraph message and exit code 2 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeelworkError as exc:
            err_console.print(f"[bold red]error:[/] {_escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


#: The settings of the ``keel`` run in progress, made by :func:`start_settings`.
_RUN_SETTINGS: ContextVar[Settings | None] = ContextVar("keelwork_cli_settings", default=None)


def _load_settings() -> Settings:
    """Read and check the settings; a deprecated variable name is reported on stderr."""
    import warnings

    from keelwork.spec.settings import load_settings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        settings = load_settings()
    for w in caught:
        err_console.print(f"[yellow]warning:[/] {_escape(str(w.message))}", soft_wrap=True)
    return settings


def start_settings(ctx: typer.Context) -> Settings:
    """Read and check the settings once, where ``keel`` starts; they hold until ``ctx`` closes.

    Raises:
        SpecError: a setting holds a value it cannot take.
    """
    settings = _load_settings()
    token = _RUN_SETTINGS.set(settings)
    ctx.call_on_close(lambda: _RUN_SETTINGS.reset(token))
    return settings


def current_settings() -> Settings:
    """The settings of this ``keel`` run, to pass down to the use-cases.

    Made and checked once at start-up (:func:`start_settings`, from ``keel``'s entry point); a
    sub-app run on its own reads them when its command starts.

    Raises:
        SpecError: a setting holds a value it cannot take.
    """
    settings = _RUN_SETTINGS.get()
    return settings if settings is not None else _load_settings()


@contextmanager
def read_progress(path: Path) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress callback ``(rows read, total)`` for a big file on a terminal, else None."""
    try:
        big = path.stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        big = False  # the reader reports the real problem
    if not big or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]reading {path.name}"), BarColumn(),
                  TextColumn("{task.completed:,} rows"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("reading", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def configure_logging(level: str, access_log: bool) -> None:
    """Logging of a server this process runs: ``level`` overall, and the JSON access log (one
    object per line on stdout) when ``access_log``."""
    import logging

    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    access = logging.getLogger("keelwork.access")
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    if not access.handlers:
        # One JSON object per line on stdout, nothing around it: ready for a log shipper.
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.propagate = False


def say_reference(done: dict[str, Any]) -> None:
    """Say whether ``keel init`` stored the monitoring reference (and why not)."""
    if done.get("reference_warning"):
        console.print(f"[yellow]warning:[/] {done['reference_warning']}", highlight=False)
    else:
        console.print(f"stored the monitoring reference ({done['reference']} with labels)")
