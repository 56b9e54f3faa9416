"""``guards.out_of_distribution``: a detector per served model version, fitted on the
reference data, scoring each request's instances (:mod:`keelwork.core.ood`).

:func:`ensure_detectors` fits the detector of each keel.yaml model's champion version from
``monitoring.reference`` (over the contract's float, integer and category inputs) when the
store holds none, and stores it; a server calls it at start, so the guard is in force before
the first request. :class:`OodGuard` is what the gateway calls: the flags of a batch of
instances for the version that answers (a version without a detector, e.g. a challenger
registered later, is not judged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from keelwork.adapters.data import read_table
from keelwork.adapters.stores.ood_store import OodStore
from keelwork.core.contracts.record import as_records
from keelwork.core.ood import OodDetector, fit
from keelwork.errors import ErrorDetail, SpecError
from keelwork.service.monitoring.reference import champion_version
from keelwork.spec.model import ResolvedSpec, ood_settings

log = logging.getLogger("keelwork.ood")

#: Reference rows a detector is fitted on at most (a uniform sample beyond).
MAX_ROWS = 200_000


class OodGuard:
    """The detectors of a server, by (model, version).

    Args:
        detectors: The fitted detectors.
        action: ``flag`` or ``reject``.
    """

    def __init__(self, detectors: dict[tuple[str, int], OodDetector], action: str,
                 names: Sequence[str] = ()) -> None:
        self.detectors = detectors
        self.action = action
        #: The contract's inputs in order: an array instance is read as their record.
        self.names = tuple(names)

    def flags(self, model: str, version: int, instances: Sequence[Any]) -> list[bool] | None:
        """Per instance, whether it is unlike the reference (None: no detector)."""
        det = self.detectors.get((model, version))
        if det is None:
            return None
        rows = [i if isinstance(i, dict) else {} for i in as_records(list(instances), self.names)]
        return det.flags(rows)


def _columns(resolved: ResolvedSpec) -> tuple[list[str], list[str]]:
    inputs = resolved.spec.contract.inputs
    return ([f.name for f in inputs if f.type in ("float", "integer")],
            [f.name for f in inputs if f.type == "category"])


def fit_detector(resolved: ResolvedSpec) -> OodDetector:
    """Fit on ``monitoring.reference``.

    Raises:
        SpecError: the guard is off or the reference is unusable.
        DataFileError: the reference file cannot be read.
    """
    settings = ood_settings(resolved.spec.guards)
    reference = resolved.spec.monitoring.reference
    if settings is None or reference is None:
        raise SpecError("guards.out_of_distribution needs monitoring.reference.",
                        [ErrorDetail("guards.out_of_distribution", "ood_needs_reference")])
    numeric, categorical = _columns(resolved)
    table = read_table(resolved.resolve_path(reference))
    if table.num_rows > MAX_ROWS:
        import numpy as np

        keep = np.sort(np.random.default_rng(0).choice(table.num_rows, MAX_ROWS,
                                                          replace=False))
        table = table.take(keep)
    rows = table.select([c for c in (*numeric, *categorical)
                         if c in table.column_names]).to_pylist()
    try:
        return fit(rows, numeric, categorical, alpha=settings.target_fpr)
    except ValueError as exc:
        raise SpecError(f"guards.out_of_distribution: {exc}.",
                        [ErrorDetail("guards.out_of_distribution", "ood_fit", None,
                                     str(exc))]) from None


def ensure_detectors(resolved: ResolvedSpec, engine: Engine) -> OodGuard | None:
    """The guard of ``resolved`` with a detector per model champion, fitting and storing the
    missing ones (None when the guard is off).

    Raises:
        SpecError: the reference is unusable.
    """
    settings = ood_settings(resolved.spec.guards)
    if settings is None:
        return None
    store = OodStore(engine)
    store.ensure_schema()
    detectors: dict[tuple[str, int], OodDetector] = {}
    fitted: OodDetector | None = None
    for m in resolved.spec.models:
        version = champion_version(resolved, m.name)
        if version is None:
            continue
        body = store.get(m.name, version)
        if body is None or body.get("alpha") != settings.target_fpr:
            fitted = fitted or fit_detector(resolved)
            body = fitted.to_dict()
            store.put(m.name, version, body)
            log.info("out-of-distribution detector fitted for %s:%d (target FPR %g)",
                     m.name, version, settings.target_fpr)
        detectors[(m.name, version)] = OodDetector.from_dict(body)
    return OodGuard(detectors, settings.action,
                    tuple(f.name for f in resolved.spec.contract.inputs))


__all__ = ["MAX_ROWS", "OodGuard", "ensure_detectors", "fit_detector"]
