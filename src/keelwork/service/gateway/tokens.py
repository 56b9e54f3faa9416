"""Token usage of model answers, charged at keel.yaml's dated token prices.

A model reports the tokens an answer used by answering a mapping with a ``usage`` field,
``{"input_tokens": int, "output_tokens": int}`` (as generative APIs do; the field stays in the
answer the client gets). Each answered request's usage is counted in
``keelwork_tokens_total{model,version,kind}`` and charged at the ``cost.token_prices`` entry in
effect on the day (UTC) of the call, into ``keelwork_cost_total``.

A usage that cannot be priced (no entry in effect that day, no ``token_prices`` at all, or a
``usage`` keelwork cannot read) is never charged as free: it is counted in
``keelwork_token_price_missing_total{model,version}``, logged (at most once a minute per
version), and its request's log record says so in ``request_meta.cost_error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from keelwork.adapters.metrics import GatewayMetrics
from keelwork.core.cost import USAGE_KEY, TokenUsage, charge_tokens, usage_of
from keelwork.spec.cost import CostSection

log = logging.getLogger("keelwork.cost")

#: Seconds between two log lines about unpriced tokens of one version.
LOG_EVERY_S = 60.0


class TokenMeter:
    """Counts and charges the tokens of answers (see the module doc).

    Args:
        prices: keel.yaml's cost section.
        metrics: Where tokens, their cost and unpriced usage are counted.
    """

    def __init__(self, prices: CostSection, metrics: GatewayMetrics) -> None:
        self.prices = prices
        self.metrics = metrics
        self._logged: dict[tuple[str, str], float] = {}

    def charge(self, model: str, version: int, answers: Sequence[Any],
               at: float | None = None) -> str | None:
        """Count and charge the usage ``answers`` report.

        Returns:
            None when every usage was priced (or none was reported); else the error, for the
            request's log record.
        """
        reporting = [a for a in answers if type(a) is dict and USAGE_KEY in a]
        if not reporting:  # the common case, on every request: one pass, nothing made
            return None
        total, problem = TokenUsage(), None
        for answer in reporting:
            got = usage_of(answer)
            if isinstance(got, str):
                problem = f"model {model} reported an unreadable token usage: {got}"
            elif got is not None:
                total = total + got
        v = str(version)
        m = self.metrics
        if total.input_tokens or total.output_tokens:
            m.child(m.tokens, model, v, "input").inc(total.input_tokens)
            m.child(m.tokens, model, v, "output").inc(total.output_tokens)
            cost = charge_tokens(self.prices, model, total, time.time() if at is None else at)
            if isinstance(cost, str):
                problem = cost
            else:
                m.child(m.token_cost, model, v).inc(cost)
        if problem is not None:
            m.child(m.token_price_missing, model, v).inc()
            now = time.monotonic()
            if now - self._logged.get((model, v), -LOG_EVERY_S) >= LOG_EVERY_S:
                self._logged[(model, v)] = now
                log.error("Token usage not charged (%s): fix cost.token_prices in keel.yaml; "
                          "keelwork_token_price_missing_total counts each such answer", problem)
        return problem


__all__ = ["LOG_EVERY_S", "TokenMeter"]
