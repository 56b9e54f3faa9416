"""The monitoring use-cases ``keel monitor`` calls: build a reference, run windows, show results.

Each opens what it needs from the project's keel.yaml (the store, the registry, the model) and
closes it again; the command only parses its options and renders what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keelwork.core.monitors.reference import MonitorReference
from keelwork.core.monitors.report import MonitorReport
from keelwork.core.monitors.windows import WindowSpec, parse_window
from keelwork.errors import MonitorError
from keelwork.spec.model import ResolvedSpec


def monitored_model(resolved: ResolvedSpec, model: str | None, *,
                    option: str = "--model NAME") -> str:
    """``model``, or the first model of keel.yaml.

    Args:
        resolved: The project's keel.yaml.
        model: The model named by the caller, if any.
        option: How the caller names a model, for the error (``model=NAME`` from Python).

    Raises:
        MonitorError: no model given and keel.yaml declares none.
    """
    names = [m.name for m in resolved.spec.models]
    if model is None:
        if not names:
            raise MonitorError(f"keel.yaml declares no model; pass {option}.")
        return str(names[0])
    return model


def window_spec(resolved: ResolvedSpec, window: str | None) -> WindowSpec:
    """``window`` parsed, or the first of ``monitoring.windows`` (default ``1h``).

    Raises:
        MonitorError: the window spec is invalid.
    """
    mon = resolved.spec.monitoring
    return parse_window(window or (mon.windows[0] if mon.windows else "1h"))


def build_and_store_reference(resolved: ResolvedSpec, name: str, *, data: Path | None = None,
                              version: int | None = None) -> tuple[MonitorReference, Any]:
    """Profile the reference data and ``name``'s predictions on it (its champion, or
    ``version``), and store the result.

    Returns:
        The reference and its stored row.

    Raises:
        MonitorError, DataFileError: no usable reference data.
        ModelNotFoundError / ModelLoadError: the model cannot be resolved or loaded.
        StoreError: the store failed.
    """
    from keelwork.service.models import loaded
    from keelwork.service.monitoring.reference import build_reference, store_reference

    with loaded(resolved, name, None if version is None else str(version)) as (runtime, number):
        ref = build_reference(resolved, name, data=data, runtime=runtime, model_version=number)
    return ref, store_reference(resolved, ref)


@dataclass
class MonitorSession:
    """An open monitoring of one model: its reference and, when wanted, its rescorer.

    Attributes:
        name: The model.
        version: The version whose predictions are monitored (None: not registered).
        reference: The reference its windows are compared with.
        reference_row: The stored reference row.
        warnings: What is left out of the run, and why (one sentence each).
    """

    resolved: ResolvedSpec
    name: str
    version: int | None
    engine: Any
    reference: MonitorReference
    reference_row: Any
    store: bool
    warnings: list[str] = field(default_factory=list)
    rescore: Callable[[list[Any]], list[Any] | None] | None = None
    ahead: Any = None  # a rollups.ReadAhead started by open_monitor

    def run(self, spec: WindowSpec, since: float, until: float, *, now: float,
            on_window: Callable[[dict[str, Any]], None] | None = None,
            rollups: bool = True) -> MonitorReport:
        """Monitor the log over ``[since, until)`` in windows of ``spec`` (``rollups``: see
        :func:`~keelwork.service.monitoring.runner.run_monitor`).

        Raises:
            MonitorError: ``until <= since``.
            StoreError: the store failed.
        """
        from keelwork.service.monitoring.fairness import fairness_settings
        from keelwork.service.monitoring.runner import MonitorSettings, run_monitor

        settings = replace(MonitorSettings.from_spec(self.resolved.spec.monitoring,
                                                     version=self.version),
                           fairness=fairness_settings(self.resolved.spec))
        return run_monitor(self.engine, self.reference, spec.text, since=since, until=until,
                           settings=settings, reference_row=self.reference_row,
                           rescore=self.rescore, now=now, on_window=on_window,
                           store=self.store, rollups=rollups,
                           ahead=self.ahead if rollups else None)


@contextmanager
def open_monitor(resolved: ResolvedSpec, name: str, *, version: int | None = None,
                 rescore: bool = True,
                 ahead: tuple[WindowSpec, float, float] | None = None,
                 ) -> Iterator[MonitorSession]:
    """Open the monitoring of ``name``: its champion's predictions against the champion's
    reference, stored; or ``version``'s against its own, shown only.

    With ``rescore``, the model is loaded to score logged inputs again when the reference
    wants scores (prediction-score drift, CBPE); when it cannot be loaded the run goes on
    without them and :attr:`MonitorSession.warnings` says so.

    ``ahead``: the window spec and range the session will run (with rollups): the labelled
    predictions those windows fold are read on a thread from here on, while the registry and
    the reference load.

    Raises:
        MonitorError: no reference is stored for the model.
        StoreError: the store is unreachable.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.service.monitoring.rollups import read_ahead

    engine = make_engine(resolved.storage_url)
    close: Callable[[], None] | None = None
    started = None if ahead is None else read_ahead(engine, name, *ahead)
    try:
        from keelwork.service.monitoring.reference import (
            champion_version,
            load_reference,
            open_rescorer,
        )

        monitored = version if version is not None else champion_version(resolved, name)
        reference, row = load_reference(engine, name, monitored)
        session = MonitorSession(resolved, name, monitored, engine, reference, row,
                                 store=version is None, ahead=started)
        if rescore and ("prediction:score" in reference.profile.columns
                        or reference.cbpe is not None):
            try:
                # Loaded only if a window needs it (rollups with scores never do).
                session.rescore, close = open_rescorer(resolved, name, monitored, lazy=True)
            except Exception as exc:  # the run goes on; prediction scores are left out
                session.warnings.append(
                    f"the model could not be loaded to score logged inputs "
                    f"({type(exc).__name__}: {exc}); prediction:score and CBPE are left out.")
        yield session
    finally:
        if close is not None:
            close()
        if started is not None:
            started.wait()
        engine.dispose()


def stored_windows(resolved: ResolvedSpec, name: str, window: str | None = None, *,
                   limit: int = 24) -> list[Any]:
    """The latest stored window results of ``name`` (what /metrics exports), newest first.

    Raises:
        StoreError: the store failed.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.adapters.stores.monitor_store import MonitorStore

    engine = make_engine(resolved.storage_url)
    try:
        store = MonitorStore(engine)
        store.ensure_schema()
        return list(store.windows(name, window, limit=limit))
    finally:
        engine.dispose()


__all__ = [
    "MonitorSession",
    "build_and_store_reference",
    "monitored_model",
    "open_monitor",
    "stored_windows",
    "window_spec",
]
