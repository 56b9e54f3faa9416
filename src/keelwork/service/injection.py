"""``guards.prompt_injection``: the contract's text inputs scored for injection and jailbreak
attempts before the model sees them (:mod:`keelwork.core.injection`).

:class:`InjectionScreen` is what the gateway calls. It scores every scanned field of every
instance in a worker thread, bounded by ``timeout_ms``, and answers per instance whether any
field scored at or above the threshold. A failure (the scorer raised, or ran past its budget)
raises :class:`~keelwork.errors.GuardUnavailable` when the guard fails closed, and answers "not
flagged" when it fails open; the gateway counts either on ``keelwork_guard_errors_total``.

With ``canary_field`` set (generative models), :class:`Canary` adds a fresh random token to
each instance the model gets; the model keeps it in its system prompt, and an answer that holds
it is treated as an attack that got through (flagged, or withheld with 403).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from keelwork.core.contracts.record import as_records
from keelwork.core.injection.model import InjectionModel, shipped_model
from keelwork.errors import ErrorDetail, GuardRefused, GuardUnavailable
from keelwork.spec.guard_settings import InjectionGuard
from keelwork.spec.guards import injection_fields
from keelwork.spec.model import KeelSpec, injection_settings

log = logging.getLogger("keelwork.injection")

#: The guard's name (log records, metrics, error details, review.guards).
INJECTION_GUARD = "prompt_injection"


class InjectionScreen:
    """The prompt-injection guard of a server.

    Args:
        settings: ``guards.prompt_injection`` as an object.
        fields: The contract inputs scanned.
        model: The classifier (default: the shipped one).
    """

    def __init__(self, settings: InjectionGuard, fields: Sequence[str],
                 model: InjectionModel | None = None, names: Sequence[str] = ()) -> None:
        self.settings = settings
        self.fields = tuple(fields)
        #: The contract's inputs in order: an array instance is read as their record.
        self.names = tuple(names)
        self.model = model if model is not None else shipped_model()
        self.threshold = (settings.threshold if settings.threshold is not None
                          else self.model.threshold)
        #: ``canary_field``'s token maker (None: no canary).
        self.canary = Canary(settings.canary_field, self.names) if settings.canary_field \
            else None

    @property
    def action(self) -> str:
        return self.settings.action

    def hits(self, instances: Sequence[Any]) -> list[list[str]]:
        """Per instance, the scanned fields whose text scored as an attack."""
        out: list[list[str]] = []
        for inst in as_records(list(instances), self.names):
            found: list[str] = []
            if isinstance(inst, dict):
                for name in self.fields:
                    value = inst.get(name)
                    if isinstance(value, str) and value and \
                            self.model.score(value) >= self.threshold:
                        found.append(name)
            out.append(found)
        return out

    async def judge(self, instances: Sequence[Any],
                    on_failure: Callable[[str], None]) -> list[list[str]]:
        """:meth:`hits`, run off the event loop within ``timeout_ms``.

        Args:
            instances: The request's instances.
            on_failure: Called with ``failed_open`` or ``failed_closed`` when the guard fails.

        Raises:
            GuardUnavailable: the guard failed and fails closed.
        """
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.hits, list(instances)),
                                          self.settings.timeout_ms / 1000.0)
        except Exception as exc:
            why = ("timed out" if isinstance(exc, TimeoutError)
                   else f"raised {type(exc).__name__}")
            closed = self.settings.fails_closed
            on_failure("failed_closed" if closed else "failed_open")
            log.warning("the prompt-injection guard %s; the request is %s", why,
                        "refused" if closed else "answered unchecked")
            if closed:
                raise GuardUnavailable(
                    f"The prompt-injection guard {why}; the request is refused "
                    "(guards.prompt_injection fails closed). Retry shortly.",
                    [ErrorDetail("guards.prompt_injection", "guard_failed", None, why)],
                ) from None
            return [[] for _ in instances]


class Canary:
    """A fresh random token per request, put in each instance under ``field`` for a
    generative model to keep in its system prompt; an answer that contains it was injected
    (the model was made to repeat its instructions)."""

    def __init__(self, field: str, names: Sequence[str] = ()) -> None:
        self.field = field
        #: The contract's inputs in order: an array instance becomes their record, so that it
        #: carries the token too (a client cannot turn the canary off by sending arrays).
        self.names = tuple(names)

    def arm(self, model_input: Sequence[Any]) -> tuple[list[Any], str]:
        """The instances as the model gets them, with the token, and the token."""
        token = f"kw-canary-{secrets.token_hex(8)}"
        return [{**i, self.field: token} if isinstance(i, dict) else i
                for i in as_records(list(model_input), self.names)], token

    @staticmethod
    def leaked(outputs: Sequence[Any], token: str) -> list[bool]:
        """Per answer, whether any text in it holds the token (nested values searched)."""
        def holds(value: Any, depth: int = 0) -> bool:
            if isinstance(value, str):
                return token in value
            if depth > 8:
                return False
            if isinstance(value, dict):
                return any(holds(v, depth + 1) for v in value.values())
            if isinstance(value, list | tuple):
                return any(holds(v, depth + 1) for v in value)
            return False

        return [holds(o) for o in outputs]


def leak_refusal(leaks: Sequence[bool]) -> GuardRefused:
    """The 403 of answers that echoed the canary: the answer is withheld."""
    details = [ErrorDetail(f"instances[{i}]", "canary_leak", None, "the model's answer "
                           "holds the request's canary token: it was injected")
               for i, leaked in enumerate(leaks) if leaked]
    return GuardRefused(
        f"The answer was withheld by the {INJECTION_GUARD} guard: {len(details)} answer(s) "
        "repeated the canary token of the model's instructions (guards.prompt_injection: "
        "reject).", details, guard=INJECTION_GUARD)


def refusal(hits: Sequence[Sequence[str]]) -> GuardRefused:
    """The 403 of a rejected request: where the attack was, never what it said."""
    details = [ErrorDetail(f"instances[{i}].{name}", INJECTION_GUARD, None,
                           "scored as a prompt-injection or jailbreak attempt")
               for i, names in enumerate(hits) for name in names]
    return GuardRefused(
        f"The request was refused by the {INJECTION_GUARD} guard: {len(details)} text "
        "field(s) scored as a prompt-injection or jailbreak attempt "
        "(guards.prompt_injection: reject).", details, guard=INJECTION_GUARD)


def open_screen(spec: KeelSpec, model: InjectionModel | None = None) -> InjectionScreen | None:
    """The guard keel.yaml turns on, or None."""
    settings = injection_settings(spec.guards)
    if settings is None:
        return None
    return InjectionScreen(settings, injection_fields(spec), model,
                           tuple(f.name for f in spec.contract.inputs))


__all__ = ["INJECTION_GUARD", "Canary", "InjectionScreen", "leak_refusal", "open_screen",
           "refusal"]
