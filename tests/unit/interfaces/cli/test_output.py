"""fit(): tables that stay readable in an 80-column terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from keelwork.interfaces.cli.output import fit

REASON = "review_len: Wasserstein 0.31 above the 0.10 floor and the 0.04 noise band"


def _render(table: Table, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(fit(table, drop=("estimated",), width=width))
    return console.export_text()


def _monitor_like() -> Table:
    table = Table(title="sentiment:1: 1h windows against reference #1 (version 1)")
    for col in ("start", "predictions", "status", "drifted", "segments drifted", "quality",
                "estimated", "labels"):
        table.add_column(col)
    table.add_row("2026-12-05 06:00", "300", "[green]ok[/]", REASON, "", "acc 0.810 f1 0.721",
                  "acc 0.80", "67% waiting")
    return table


def test_short_words_are_never_split_and_long_reasons_fold_whole() -> None:
    text = _render(_monitor_like(), 80)
    assert "2026-12-05" in text and "predictions" in text and "waiting" in text
    assert "…" not in text
    flat = " ".join(text.split())
    for word in REASON.split():
        assert word in flat  # folded across lines at word ends, never cut


def test_narrow_tables_leave_out_empty_and_low_value_columns() -> None:
    narrow, wide = _render(_monitor_like(), 80), _render(_monitor_like(), 160)
    assert "segments drifted" not in narrow and "estimated" not in narrow
    assert "segments drifted" in wide and "estimated" in wide


def test_an_empty_table_keeps_its_headers() -> None:
    table = Table()
    table.add_column("name")
    assert "name" in _render(table, 80)
