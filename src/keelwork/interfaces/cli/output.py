"""Shared console helpers for the CLI: one place that turns errors into messages and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from keelwork.errors import KeelworkError

console = Console()
err_console = Console(stderr=True)

#: Exit code for bad input (spec, data, arguments): the user must change something.
EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])


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
