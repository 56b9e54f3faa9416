"""What of a request may be stored: keel.yaml's PII policy applied to instances, answers and
error details before the prediction log (or anything else) sees them.

Each contract field has a mode (``contract.inputs[].pii`` / ``contract.outputs[].pii``):

- ``keep``: stored as sent;
- ``drop``: not stored at all (the key is removed);
- ``redact``: a ``text`` field is scanned and each entity found replaced by its type
  (``<EMAIL_ADDRESS>``); any other field is replaced whole (``<REDACTED>``): a field marked
  personal is personal whatever a scanner finds in it;
- ``pseudonymise``: like ``redact``, with keyed HMAC tokens instead (``<EMAIL_ADDRESS:3f9a...>``
  for an entity, ``pii:3f9a...`` for a whole value): the same value gives the same token, so
  joins and counts still work, and without the key nobody can test a guess.

Fields without a mode get ``pii_redaction.text`` when they are ``text`` fields and redaction is
on, else ``keep``. An instance that is a bare string (a text model without a contract) is a text
field. Scanning fails closed: if the scanner raises or gives up on a pathological text, the
field is replaced whole and the failure counted (:attr:`Redactor.failures`).

The model sees the original (``pii_redaction.model_sees: original``, the default) or the
redacted instance (``redacted``). Pure: the scanner is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from keelwork.errors import ErrorDetail

Mode = Literal["redact", "pseudonymise", "drop", "keep"]
#: A scanner: the text and the mode -> the text with its entities replaced. It may raise;
#: the field is then replaced whole.
Scanner = Callable[[str, Mode], str]

WHOLE = "<REDACTED>"
_DROPPED = object()


def token(key: bytes, value: Any) -> str:
    """The keyed pseudonym of a whole value (stable for one key)."""
    text = value if isinstance(value, str) else repr(value)
    digest = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"pii:{digest[:20]}"


@dataclass
class Redactor:
    """Applies the PII policy of a contract.

    Args:
        inputs: Mode per input field (fields not named: ``keep`` unless a text field below).
        outputs: Mode per output field.
        text_fields: Input and output fields of type ``text``.
        text_default: The mode of a text field without its own (None: ``keep``).
        scan: The entity scanner for text values.
        key: The pseudonymisation key.
    """

    inputs: Mapping[str, Mode]
    outputs: Mapping[str, Mode]
    text_fields: frozenset[str]
    text_default: Mode | None
    scan: Scanner
    key: bytes
    #: Fields replaced whole because their scan failed (fail closed).
    failures: int = 0
    _modes_in: dict[str, Mode] = field(default_factory=dict)
    _modes_out: dict[str, Mode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        default = self.text_default
        self._modes_in = {f: default for f in self.text_fields if default} | dict(self.inputs)
        self._modes_out = {f: default for f in self.text_fields if default} | dict(self.outputs)
        self._modes_in = {k: m for k, m in self._modes_in.items() if m != "keep"}
        self._modes_out = {k: m for k, m in self._modes_out.items() if m != "keep"}

    @property
    def active(self) -> bool:
        """Whether anything is ever changed (else callers skip it on the hot path)."""
        return bool(self._modes_in or self._modes_out or self.text_default)

    # ------------------------------------------------------------------ values
    def value(self, value: Any, mode: Mode, *, text: bool) -> Any:
        """One value under ``mode`` (``text``: scan it; else replace it whole)."""
        if value is None or mode == "keep":
            return value
        if mode == "drop":
            return _DROPPED
        if text and isinstance(value, str):
            try:
                return self.scan(value, mode)
            except Exception:  # fail closed: never the raw text, never the scanner's words
                self.failures += 1
        return token(self.key, value) if mode == "pseudonymise" else WHOLE

    def _record(self, obj: Any, modes: Mapping[str, Mode]) -> Any:
        if isinstance(obj, str) and self.text_default:
            return self.value(obj, self.text_default, text=True)
        if not isinstance(obj, dict) or not modes:
            return obj
        out = {}
        for k, v in obj.items():
            mode = modes.get(k)
            new = v if mode is None else self.value(v, mode, text=k in self.text_fields)
            if new is not _DROPPED:
                out[k] = new
        return out

    def instance(self, inst: Any) -> Any:
        """What may be stored of one request instance."""
        return self._record(inst, self._modes_in)

    def output(self, out: Any) -> Any:
        """What may be stored of one answer."""
        return self._record(out, self._modes_out)

    def instances(self, items: Sequence[Any]) -> list[Any]:
        return [self.instance(i) for i in items]

    def detail(self, d: ErrorDetail) -> ErrorDetail:
        """An error detail whose ``got`` is a personal field's value, with that value hidden.

        The path names the field as ``instances[3].email`` or ``email``.
        """
        name = d.path.rsplit(".", 1)[-1].split("[", 1)[0]
        mode = self._modes_in.get(name) or self._modes_out.get(name)
        if mode is None or d.got is None:
            return d
        got = WHOLE if mode in ("redact", "drop") else token(self.key, d.got)
        return ErrorDetail(d.path, d.rule, got, _scrub(d.message, d.got), d.line)


def _scrub(message: str, value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return message.replace(repr(value), WHOLE).replace(text, WHOLE) if text else message


def no_scan(text: str, mode: Mode) -> str:
    """The scanner when none is installed: the whole text is personal."""
    raise LookupError("no scanner")


__all__ = ["WHOLE", "Mode", "Redactor", "Scanner", "no_scan", "token"]
