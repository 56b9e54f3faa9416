"""The human review queue: predictions a person should look at, and verdicts that become
labels (keel.yaml's ``review`` section; :mod:`keelwork.core.review` holds the rules).

- :func:`fill` reads the last day of answered predictions of each model, scores their logged
  inputs with the model (its probabilities give the uncertainty), and queues guard-flagged,
  uncertain and random ones within ``review.budget_per_day``; ``keel serve`` runs it every
  ``review.interval`` and ``keel review fill`` on demand.
- :func:`verdict` records a reviewer's label: it becomes the prediction's label at once (the
  label store, source ``review:<reviewer>``, checked against the output contract), so
  monitoring and quality SLOs see it, and it is audited. A verdict for a prediction that is not
  in the queue, whose log record is gone (erased, expired), or that has the verdicts it wants
  already, is refused.
- :func:`stats` counts the queue and measures agreement on the items meant to be
  double-labelled;
  :func:`export` writes the queue as Label Studio tasks or Argilla records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine

from keelwork.adapters.stores.audit_store import AuditLog
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.adapters.stores.prediction_store import PredictionReader
from keelwork.adapters.stores.review_store import ReviewStore
from keelwork.core.label_check import LabelChecker
from keelwork.core.predictions import PredictionRecord
from keelwork.core.review import Candidate, agreement, select, uncertainty
from keelwork.errors import ErrorDetail, KeelworkError, SpecError
from keelwork.service.redaction import record_scrubber
from keelwork.spec.model import ResolvedSpec, injection_settings
from keelwork.spec.review import ReviewSection
from keelwork.spec.slos import duration_seconds

if TYPE_CHECKING:
    from keelwork.spec.settings import Settings

log = logging.getLogger("keelwork.review")

#: How far back fill looks for predictions.
LOOKBACK_S = 86_400.0
#: Predictions scored per model call while filling.
SCORE_BATCH = 2_048


def _section(resolved: ResolvedSpec) -> ReviewSection:
    section = resolved.spec.review
    if section is None:
        raise SpecError("keel.yaml has no 'review' section: add one (budget_per_day, "
                        "random_share, guards) to use the review queue.",
                        [ErrorDetail("review", "review_missing", None, "no review section")])
    return section


def _guards(resolved: ResolvedSpec, section: ReviewSection) -> list[str]:
    """The guards whose flagged predictions enter: ``review.guards``, and the prompt-injection
    guard when its action is ``review``."""
    injection = injection_settings(resolved.spec.guards)
    extra = ["prompt_injection"] if injection is not None and injection.action == "review" \
        else []
    return [*section.guards, *(g for g in extra if g not in section.guards)]


def _flagged(record: PredictionRecord, guards: Sequence[str]) -> str | None:
    """The guard a prediction enters the queue by: the first of ``guards`` that flagged it
    (a row two guards flagged lists them in ``request_meta.guards``), else its logged one."""
    every = record.request_meta.get("guards")
    if isinstance(every, list):
        return next((g for g in every if g in guards), record.guard)
    return record.guard


@dataclass
class FillReport:
    """What one fill queued, per reason."""

    queued: dict[str, int] = field(default_factory=dict)
    budget_left: int = 0
    scored: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"queued": self.queued, "budget_left": self.budget_left, "scored": self.scored}


def _uncertainties(resolved: ResolvedSpec, model: str, records: list[Any]) -> list[float | None]:
    from keelwork.service.monitoring.reference import open_rescorer

    try:
        score, close = open_rescorer(resolved, model)
    except KeelworkError as exc:
        log.warning("review: %s cannot be scored again (%s); only random picks", model, exc)
        return [None] * len(records)
    out: list[float | None] = []
    try:
        for start in range(0, len(records), SCORE_BATCH):
            chunk = [r.inputs for r in records[start:start + SCORE_BATCH]]
            proba = score(chunk) if all(i is not None for i in chunk) else None
            if proba is None:
                out.extend([None] * len(chunk))
            else:
                out.extend(uncertainty(p) for p in proba)
    finally:
        close()
    return out


def fill(resolved: ResolvedSpec, engine: Engine, *, now: float | None = None,
         seed: int | None = None) -> FillReport:
    """Queue the day's predictions a person should look at, within the budget.

    Raises:
        SpecError: keel.yaml has no ``review`` section.
        StoreError: the store failed.
    """
    section = _section(resolved)
    at = time.time() if now is None else now
    store = ReviewStore(engine)
    store.ensure_schema()
    day = datetime.fromtimestamp(at, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    report = FillReport(budget_left=max(0, section.budget_per_day - store.enqueued_since(day)))
    reader = PredictionReader(engine)
    if report.budget_left == 0 or not reader.has_log():
        return report
    rng = random.Random(seed if seed is not None else int(at))
    for m in resolved.spec.models:
        records = [r for r in reader.iter_records(at - LOOKBACK_S, at, model=m.name)
                   if r.status in ("ok", "fallback")]
        known = store.queued([r.id for r in records])
        records = [r for r in records if r.id not in known]
        if not records:
            continue
        scores = _uncertainties(resolved, m.name, records)
        report.scored += sum(s is not None for s in scores)
        guards = _guards(resolved, section)
        picks = select([Candidate(r.id, s, _flagged(r, guards)) for r, s in zip(
                           records, scores, strict=True)],
                       report.budget_left, random_share=section.random_share,
                       guards=guards, seed=rng.randrange(1 << 30))
        added = store.enqueue([
            {"prediction_id": p.prediction_id, "model": m.name, "reason": p.reason,
             "priority": p.priority,
             "wanted": 2 if rng.random() < section.double_label_share else 1}
            for p in picks])
        report.budget_left -= added
        for p in picks:
            key = p.reason.split(":")[0]
            report.queued[key] = report.queued.get(key, 0) + 1
    return report


def next_item(engine: Engine, reviewer: str) -> dict[str, Any] | None:
    """The next item for ``reviewer``: the prediction as logged (inputs already redacted when
    keel.yaml redacts PII), why it was queued; None when the queue is empty for them."""
    store = ReviewStore(engine)
    store.ensure_schema()
    while (item := store.next_for(reviewer)) is not None:
        record = store.records([item["prediction_id"]]).get(item["prediction_id"])
        if record is not None:
            return {"prediction_id": item["prediction_id"], "model": item["model"],
                    "reason": item["reason"], "inputs": record.inputs,
                    "outputs": record.outputs, "version": record.version, "ts": record.ts}
        store.record(item["prediction_id"], reviewer, None)  # gone from the log: skip it
    return None


def verdict(resolved: ResolvedSpec, engine: Engine, audit: AuditLog, prediction_id: str,
            reviewer: str, label: Any, *, via: str | None = None) -> dict[str, Any]:
    """Record ``reviewer``'s label for a queued prediction; it becomes the prediction's label.

    The label is stored (as the label, the verdict and in the audit entry) as keel.yaml's PII
    policy keeps any label: every text in it scanned.

    ``via`` says how it came (``page``, ``import:label-studio by ...``) in the audit entry.

    Raises:
        KeelworkError: the prediction is not in the queue, is gone from the log, the
            reviewer judged it already, or it has the verdicts it wants (``review_done``).
        ContractViolation: the label breaks the output contract.
    """
    store = ReviewStore(engine)
    store.ensure_schema()
    item = store.item(prediction_id)
    if item is None:
        raise KeelworkError(f"Prediction {prediction_id!r} is not in the review queue "
                            "(keel review next gives the items to judge).",
                            [ErrorDetail("prediction_id", "review_unknown", prediction_id)])
    if prediction_id not in store.records([prediction_id]):
        raise KeelworkError(f"Prediction {prediction_id!r} is no longer in the log (erased "
                            "or expired): its verdict would label nothing.",
                            [ErrorDetail("prediction_id", "review_gone", prediction_id)])
    _not_judged(store, prediction_id, reviewer)
    _not_done(store, item)
    scrub = record_scrubber(resolved.spec, resolved.project_dir)
    if scrub is not None:  # keel.yaml's PII policy, as for any label (POST /v1/feedback)
        label = scrub({"label": label})["label"]
    checker = LabelChecker(resolved.spec.contract.outputs)
    labels = LabelStore(engine)
    labels.ensure_schema()
    labels.submit([{"prediction_id": prediction_id, "label": label}],
                  source=f"review:{reviewer}",
                  check_labels=checker.check if checker.active else None)
    n = store.record(prediction_id, reviewer, label)
    audit.append(actor=reviewer, action="review.label", target=prediction_id,
                 details={"label": label, "reason": item["reason"], "verdicts": n,
                          **({"via": via} if via else {})})
    return {"prediction_id": prediction_id, "label": label, "verdicts": n}


def _not_judged(store: ReviewStore, prediction_id: str, reviewer: str) -> None:
    """Refuse a second verdict (or skip) of one reviewer before anything is written."""
    if store.judged(prediction_id, reviewer):
        raise KeelworkError(f"{reviewer} judged {prediction_id!r} already.",
                            [ErrorDetail("reviewer", "review_twice", reviewer)])


def _not_done(store: ReviewStore, item: dict[str, Any]) -> None:
    """Refuse a verdict on an item that has the verdicts it wants (one, or two when it is
    double-labelled): another would replace its label and pair up as a fake agreement. A
    label is corrected through ``POST /v1/feedback`` or ``keel ingest --labels``."""
    pid, wanted = item["prediction_id"], int(item["wanted"])
    if item["state"] == "done" or store.verdicts(pid) >= wanted:
        raise KeelworkError(
            f"Prediction {pid!r} has the {wanted} verdict{'s' if wanted > 1 else ''} it wants "
            "already: correct its label through POST /v1/feedback or keel ingest --labels.",
            [ErrorDetail("prediction_id", "review_done", pid)])


def skip(engine: Engine, prediction_id: str, reviewer: str) -> None:
    """``reviewer`` passes on an item (others still get it)."""
    store = ReviewStore(engine)
    store.ensure_schema()
    if store.item(prediction_id) is None:
        raise KeelworkError(f"Prediction {prediction_id!r} is not in the review queue.",
                            [ErrorDetail("prediction_id", "review_unknown", prediction_id)])
    _not_judged(store, prediction_id, reviewer)
    store.record(prediction_id, reviewer, None)


def stats(engine: Engine) -> dict[str, Any]:
    """Items per state and, per pair of reviewers, their agreement on the items meant to be
    double-labelled (``wanted`` 2)."""
    store = ReviewStore(engine)
    store.ensure_schema()
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a, la, b, lb in store.double_labelled():
        key = (a, b) if a <= b else (b, a)
        pairs.setdefault(key, []).append((la, lb) if a <= b else (lb, la))
    agree = []
    for (a, b), got in sorted(pairs.items()):
        ag = agreement(got)
        agree.append({"reviewers": [a, b], "items": ag.items, "agreement": ag.share,
                      "kappa": ag.kappa})
    return {"items": store.counts(), "agreement": agree}


def export(engine: Engine, fmt: str) -> list[dict[str, Any]]:
    """The queue as Label Studio tasks (``label-studio``) or Argilla records (``argilla``),
    each with the logged inputs, the model's answer as a prediction/suggestion and the
    keelwork ids in the metadata."""
    store = ReviewStore(engine)
    store.ensure_schema()
    items = store.items()
    records = store.records([i["prediction_id"] for i in items])
    out: list[dict[str, Any]] = []
    for item in items:
        r = records.get(item["prediction_id"])
        if r is None:
            continue
        data = r.inputs if isinstance(r.inputs, dict) else {"input": r.inputs}
        meta = {"prediction_id": r.id, "model": r.model, "version": r.version,
                "reason": item["reason"], "state": item["state"]}
        answer = orjson.loads(orjson.dumps(r.outputs))
        if fmt == "label-studio":
            out.append({"data": {**data, "keelwork": meta},
                        "predictions": [{"model_version": f"{r.model}:{r.version}",
                                         "result": [{"from_name": "label", "to_name": "input",
                                                     "type": "choices",
                                                     "value": {"choices": [str(answer)]}}]}]})
        else:
            out.append({"fields": data, "metadata": meta,
                        "suggestions": [{"question_name": "label", "value": answer,
                                         "agent": f"{r.model}:{r.version}"}]})
    return out


async def review_loop(resolved: ResolvedSpec, engine: Engine, *, stop: asyncio.Event) -> None:
    """Fill the queue every ``review.interval`` until ``stop`` is set; failures are logged."""
    section = _section(resolved)
    every = float(duration_seconds(section.interval))
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(fill, resolved, engine)
            if report.queued:
                log.info("review: queued %s", report.queued)
        except Exception:
            log.exception("review fill failed; retrying in %.0f s", every)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


@contextlib.contextmanager
def project_review(project: Path, settings: Settings
                   ) -> Iterator[tuple[ResolvedSpec, Engine, AuditLog]]:
    """keel.yaml, the store and the audit log of a project, for the ``keel review`` commands.

    Raises:
        SpecError: no keel.yaml, or it has no ``review`` section.
    """
    from keelwork.adapters.stores.engine import make_engine
    from keelwork.service.audit import audit_log
    from keelwork.service.projects import project_spec

    resolved = project_spec(project, settings, needs="the review queue reads its 'review' "
                            "section")
    _section(resolved)
    with audit_log(project, settings) as audit:
        engine = make_engine(resolved.storage_url)
        try:
            if audit is None:
                audit = AuditLog(engine)
                audit.ensure_schema()
            yield resolved, engine, audit
        finally:
            engine.dispose()


__all__ = ["FillReport", "export", "fill", "next_item", "project_review", "review_loop", "skip",
           "stats", "verdict"]
