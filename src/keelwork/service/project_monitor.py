"""Running the monitor over a model's prediction log: the use-case behind ``Project.monitor``.

Each version is compared with its own reference: the champion's (its windows are stored, which
is what ``/metrics`` exports) unless a ``version`` is named (shown, not stored).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keelwork.spec.model import ResolvedSpec

log = logging.getLogger("keelwork.monitor")


def monitor_log(resolved: ResolvedSpec, name: str, window: str | None, since: float,
                until: float, *, now: float, version: int | None = None, rescore: bool = True,
                on_window: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """The monitor's report over ``[since, until)`` of ``name``'s prediction log.

    Args:
        resolved: The project's keel.yaml (its store and ``monitoring`` section).
        name: The model.
        window: ``1h``, ``15m``, ``1d`` or ``1000p``; default the first of
            ``monitoring.windows``.
        since: Unix seconds.
        until: Unix seconds.
        now: The time the run counts as now.
        version: Monitor this version (not stored); default the champion (stored).
        rescore: Score logged inputs again when the log holds labels but no probabilities
            (a model that cannot be loaded only leaves those figures out, with a log line).
        on_window: Called after each window (progress).

    Returns:
        What ``keel monitor run --json`` prints.

    Raises:
        MonitorError: no stored reference, or a bad window.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.core.monitors.windows import parse_window
    from keelwork.service.monitoring.reference import (
        champion_version,
        load_reference,
        open_rescorer,
    )
    from keelwork.service.monitoring.runner import MonitorSettings, run_monitor

    mon = resolved.spec.monitoring
    spec = parse_window(window or (mon.windows[0] if mon.windows else "1h"))
    monitored = version if version is not None else champion_version(resolved, name)
    settings = MonitorSettings.from_spec(mon, version=monitored)
    engine = make_engine(resolved.storage_url)
    close = None
    try:
        reference, row = load_reference(engine, name, monitored)
        score = None
        if rescore and ("prediction:score" in reference.profile.columns
                        or reference.cbpe is not None):
            try:
                score, close = open_rescorer(resolved, name, monitored)
            except Exception as exc:  # the run goes on; prediction scores are left out
                log.warning("the model could not be loaded to score logged inputs (%s: %s); "
                            "prediction:score and CBPE are left out", type(exc).__name__, exc)
        report: dict[str, Any] = run_monitor(
            engine, reference, spec.text, since=since, until=until, settings=settings,
            reference_row=row, rescore=score, now=now, on_window=on_window,
            store=version is None).to_dict()
    finally:
        if close is not None:
            close()
        engine.dispose()
    return report


__all__ = ["monitor_log"]
