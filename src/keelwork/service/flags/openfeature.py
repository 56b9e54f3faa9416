"""An OpenFeature provider over keelwork's model flags (extra ``openfeature``).

Lets code that already speaks OpenFeature (a batch job, a client choosing which model to call)
ask the very flags the gateway routes by::

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    api.set_provider(KeelFlagProvider(source))
    ref = api.get_client().get_string_value("eu-on-v3", "champion",
                                            EvaluationContext("user-42", {"tenant": "acme"}))

A flag's value is the model reference it serves (a string); the flag's ``default`` (else the
caller's default) when no rule matches. The evaluation context maps to a request: attribute
``tenant`` is the tenant, other string attributes are headers (names lower-cased), and the
targeting key is the sticky key of percentage rules. Reasons are OpenFeature's own; a flag that
is broken or missing answers the caller's default with ``ERROR`` and the matching error code.
"""

from __future__ import annotations

from typing import Any

from keelwork.core.flags import ERROR, FlagContext, evaluate
from keelwork.errors import MissingExtraError
from keelwork.service.flags.source import FlagSource

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagResolutionDetails, Reason
    from openfeature.provider import AbstractProvider, Metadata
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("openfeature-sdk", "openfeature", "The OpenFeature provider") from exc


def _context(flag_header: str, ctx: EvaluationContext | None) -> FlagContext:
    if ctx is None:
        return FlagContext()
    attrs = dict(ctx.attributes or {})
    tenant = attrs.pop("tenant", None)
    headers = {str(k).lower(): v for k, v in attrs.items() if isinstance(v, str)}
    if ctx.targeting_key:
        headers[flag_header] = ctx.targeting_key
    return FlagContext(tenant if isinstance(tenant, str) else None, headers)


class KeelFlagProvider(AbstractProvider):
    """OpenFeature provider answering from a :class:`FlagSource` (kept current by the server).

    Args:
        source: The flags in force.
    """

    def __init__(self, source: FlagSource) -> None:
        super().__init__()
        self.source = source

    def get_metadata(self) -> Metadata:
        return Metadata(name="keelwork")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None,
                               ) -> FlagResolutionDetails[str]:
        flags = self.source.current
        flag = next((f for f in flags.flags if f.name == flag_key), None)
        if flag is None:
            broken = next((b for b in flags.broken if b.name == flag_key), None)
            if broken is not None:
                flags.note_error(flag_key)
                return FlagResolutionDetails(default_value, ErrorCode.PARSE_ERROR,
                                             broken.error, Reason.ERROR)
            return FlagResolutionDetails(default_value, ErrorCode.FLAG_NOT_FOUND,
                                         f"no flag is named {flag_key!r}", Reason.ERROR)
        ev = evaluate(flag, _context(flag.sticky_header, evaluation_context))
        if ev.reason == ERROR:
            flags.note_error(flag_key)
            return FlagResolutionDetails(ev.ref or default_value, ErrorCode.GENERAL, ev.error,
                                         Reason.ERROR)
        variant = None if ev.rule is None else f"rule-{ev.rule}"
        return FlagResolutionDetails(ev.ref or default_value, reason=Reason(ev.reason),
                                     variant=variant, flag_metadata={"model": flag.model})

    def _mismatch(self, flag_key: str, default_value: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(default_value, ErrorCode.TYPE_MISMATCH,
                                     f"keelwork flag {flag_key!r} is a string (a model "
                                     "reference)", Reason.ERROR)

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None,
                                ) -> FlagResolutionDetails[bool]:
        return self._mismatch(flag_key, default_value)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None,
                                ) -> FlagResolutionDetails[int]:
        return self._mismatch(flag_key, default_value)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None,
                              ) -> FlagResolutionDetails[float]:
        return self._mismatch(flag_key, default_value)

    def resolve_object_details(self, flag_key: str, default_value: Any,
                               evaluation_context: EvaluationContext | None = None,
                               ) -> FlagResolutionDetails[Any]:
        return self._mismatch(flag_key, default_value)
