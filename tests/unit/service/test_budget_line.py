"""The line ``keel serve`` logs about the budget: what alerts, and who watches it."""

from __future__ import annotations

from keelwork.service.budget import budget_line
from keelwork.spec.loader import parse_spec

BASE = ("service: {{name: s, owners: [{owner}]}}\n"
        "models: [{{name: m, runtime: python, artifact: 'a:b'}}]\n")


def _line(cost: str, owner: str = "a@example.com") -> str | None:
    return budget_line(parse_spec(BASE.format(owner=owner) + f"cost: {cost}\n", env={}))


def test_the_line_says_who_watches_the_budget() -> None:
    assert _line("{cpu_hour: 1}") is None
    assert _line("{cpu_hour: 1, monthly_budget: 500, alert_at: [0.5, 1]}") == (
        "budget 500 USD per calendar month (UTC): alerts at 50%, 100% spent and on a "
        "month-end forecast over it (6h rate); watched by this server every 1m")
    assert _line("{cpu_hour: 1, monthly_budget: 5, evaluated_by: prometheus}").endswith(
        "evaluated by Prometheus with the rules of `keel cost rules`")
