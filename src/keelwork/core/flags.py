"""Evaluating model flags per request: never raises, says why it chose what it chose.

Semantics follow OpenFeature's evaluation API: every evaluation gives a value (here: the model
reference to serve, or None for "the usual resolution") with a ``reason`` —
``TARGETING_MATCH`` (a tenant/header rule), ``SPLIT`` (a percentage rule), ``DEFAULT`` (no rule
matched), ``DISABLED`` (the flag is off) or ``ERROR`` — and, on error, an error text. A flag that
cannot be evaluated (a malformed stored body, a rule that blows up) falls back to the flag's
default and is counted by the caller; it never fails the request. A flag whose chosen version
later fails to resolve is the gateway's to handle the same way (:meth:`FlagSet.note_error`).

Percentage bucketing is the rollouts' sticky assignment
(:func:`keelwork.core.rollout.assignment.bucket`) salted with the flag name, compared with
``percentage * 100``: two flags split independently, and raising a percentage only adds users.
Without a key (no sticky header, no tenant) a request falls in a random bucket.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keelwork.core.rollout.assignment import BUCKETS, bucket
from keelwork.spec.flags import FlagRule, FlagSpec

TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
DEFAULT = "DEFAULT"
DISABLED = "DISABLED"
ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class FlagContext:
    """What rules can look at: the tenant and the request headers (lower-case names)."""

    tenant: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one flag for one request."""

    flag: str
    ref: str | None
    reason: str
    rule: int | None = None
    error: str | None = None


def _matches(flag: FlagSpec, rule: FlagRule, ctx: FlagContext) -> bool:
    if rule.tenants is not None and ctx.tenant not in rule.tenants:
        return False
    if rule.headers is not None:
        for name, allowed in rule.headers.items():
            if ctx.headers.get(name) not in allowed:
                return False
    if rule.percentage is not None:
        key = ctx.headers.get(flag.sticky_header) or ctx.tenant
        b = bucket(flag.name, key) if key else random.randrange(BUCKETS)
        if b >= rule.percentage * (BUCKETS // 100):
            return False
    return True


def evaluate(flag: FlagSpec, ctx: FlagContext) -> Evaluation:
    """Evaluate one flag; any failure gives the default with reason ``ERROR``."""
    try:
        if not flag.enabled:
            return Evaluation(flag.name, None, DISABLED)
        for i, rule in enumerate(flag.rules):
            if _matches(flag, rule, ctx):
                reason = SPLIT if rule.percentage is not None and rule.tenants is None and \
                    rule.headers is None else TARGETING_MATCH
                return Evaluation(flag.name, rule.serve, reason, rule=i)
        return Evaluation(flag.name, flag.default, DEFAULT)
    except Exception as exc:  # a flag must never fail a request
        return Evaluation(flag.name, getattr(flag, "default", None), ERROR,
                          error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True, slots=True)
class BrokenFlag:
    """A stored flag whose body does not parse: it serves nothing and is reported."""

    name: str
    model: str | None
    error: str


class FlagSet:
    """The flags in force, by model; swapped whole when flags change (no restart).

    Args:
        flags: Parsed flags.
        broken: Flags that failed to parse (kept to report them; they never match).
    """

    def __init__(self, flags: Iterable[FlagSpec] = (),
                 broken: Iterable[BrokenFlag] = ()) -> None:
        self._by_model: dict[str, list[FlagSpec]] = {}
        for f in flags:
            self._by_model.setdefault(f.model, []).append(f)
        self.broken = list(broken)
        self._errors: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def flags(self) -> list[FlagSpec]:
        """Every parsed flag."""
        return [f for fs in self._by_model.values() for f in fs]

    def __bool__(self) -> bool:
        return bool(self._by_model) or bool(self.broken)

    def choose(self, model: str, ctx: FlagContext) -> Evaluation | None:
        """The first enabled flag of ``model`` that picks a reference, else None.

        Flags are tried in their order; one whose evaluation errs is counted and skipped, so
        a broken flag falls back to the usual resolution, never to a failed request.
        """
        for flag in self._by_model.get(model, ()):
            ev = evaluate(flag, ctx)
            if ev.reason == ERROR:
                self.note_error(flag.name)
                if ev.ref is None:
                    continue
            if ev.ref is not None:
                return ev
        for b in self.broken:
            if b.model == model:
                self.note_error(b.name)
        return None

    def note_error(self, name: str) -> None:
        """Count one failed evaluation (or a chosen version that did not resolve)."""
        with self._lock:
            self._errors[name] = self._errors.get(name, 0) + 1

    def errors(self) -> dict[str, int]:
        """Failed evaluations per flag since this set was built (plus any carried over)."""
        with self._lock:
            return dict(self._errors)

    def carry_errors(self, earlier: Mapping[str, int]) -> None:
        """Start from an earlier set's counts, so counts only grow across reloads."""
        with self._lock:
            for name, n in earlier.items():
                self._errors[name] = self._errors.get(name, 0) + n


def parse_flags(bodies: Iterable[Mapping[str, Any]]) -> FlagSet:
    """Build a :class:`FlagSet` from stored bodies; a body that does not parse is kept broken.

    Later bodies with the same name replace earlier ones (keel.yaml first, then the store).
    """
    from pydantic import ValidationError

    parsed: dict[str, FlagSpec] = {}
    broken: dict[str, BrokenFlag] = {}
    for body in bodies:
        name = str(body.get("name", "?")) if isinstance(body, Mapping) else "?"
        try:
            flag = FlagSpec.model_validate(body)
        except ValidationError as exc:
            model = body.get("model") if isinstance(body, Mapping) else None
            broken[name] = BrokenFlag(name, model if isinstance(model, str) else None,
                                      str(exc.errors()[0]["msg"]) if exc.errors() else str(exc))
            parsed.pop(name, None)
            continue
        parsed[flag.name] = flag
        broken.pop(flag.name, None)
    return FlagSet(parsed.values(), broken.values())
