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
field. An array instance holds its fields in contract order, and each position gets its field's
mode (a dropped field's position becomes ``null``, which a record reads as absent). What the
contract does not name (a key it does not hold, a position past its fields, values nested in
them) is not the contract's to vouch for: with redaction on, every string in it is scanned as
text. Scanning fails closed: if the scanner raises or gives up on a pathological text, the
field is replaced whole and the failure counted (:attr:`Redactor.failures`).

The model sees the original (``pii_redaction.model_sees: original``, the default) or the
redacted instance (``redacted``). Pure: the scanner is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Number
from typing import Any, Literal

from keelwork.errors import ErrorDetail

Mode = Literal["redact", "pseudonymise", "drop", "keep"]
#: A scanner: the text and the mode -> the text with its entities replaced. It may raise;
#: the field is then replaced whole.
Scanner = Callable[[str, Mode], str]

WHOLE = "<REDACTED>"
_DROPPED = object()
#: Nesting walked by :meth:`Redactor.loose`; anything deeper is replaced whole.
_MAX_DEPTH = 32
#: A word, as text explanations split texts (:data:`keelwork.core.explain.text.WORD`).
_WORD = re.compile(r"\w+")


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
        input_order: The input fields in contract order (the positions of an array instance).
        output_order: The output fields in contract order.
    """

    inputs: Mapping[str, Mode]
    outputs: Mapping[str, Mode]
    text_fields: frozenset[str]
    text_default: Mode | None
    scan: Scanner
    key: bytes
    input_order: tuple[str, ...] = ()
    output_order: tuple[str, ...] = ()
    #: Fields replaced whole because their scan failed (fail closed).
    failures: int = 0
    _modes_in: dict[str, Mode] = field(default_factory=dict)
    _modes_out: dict[str, Mode] = field(default_factory=dict)
    _known_in: frozenset[str] = frozenset()
    _known_out: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._known_in, self._known_out = frozenset(self.input_order), frozenset(self.output_order)
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

    def loose(self, value: Any, mode: Mode | None = None, depth: int = 0) -> Any:
        """A value no contract field vouches for: with redaction on, every string in it
        scanned as text under ``mode`` (default ``text_default``), through arrays and
        objects; without redaction, as it is."""
        mode = mode or self.text_default
        if mode is None or value is None or isinstance(value, Number):
            return value
        if isinstance(value, str):
            return self.value(value, mode, text=True)
        if depth >= _MAX_DEPTH:  # deeper than any record: not walked, not kept
            return WHOLE
        if isinstance(value, Mapping):
            return {k: self.loose(v, mode, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.loose(v, mode, depth + 1) for v in value]
        if callable(getattr(value, "tolist", None)):  # a numpy array or scalar
            return self.loose(value.tolist(), mode, depth + 1)
        return self.loose(str(value), mode, depth)

    def _record(self, obj: Any, modes: Mapping[str, Mode], order: tuple[str, ...],
                known: frozenset[str]) -> Any:
        if isinstance(obj, str):
            return self.loose(obj)
        if isinstance(obj, dict):
            if not modes and not self.text_default:
                return obj
            out = {}
            for k, v in obj.items():
                mode = modes.get(k)
                if mode is not None:
                    new = self.value(v, mode, text=k in self.text_fields)
                else:
                    new = v if k in known else self.loose(v)
                if new is not _DROPPED:
                    out[k] = new
            return out
        if isinstance(obj, list | tuple) and order:  # positional: fields in contract order
            kept = []
            for i, v in enumerate(obj):
                name = order[i] if i < len(order) else None
                mode = modes.get(name) if name is not None else None
                if mode is not None:
                    new = self.value(v, mode, text=name in self.text_fields)
                else:
                    new = v if name is not None else self.loose(v)
                kept.append(None if new is _DROPPED else new)
            return kept
        return self.loose(obj)

    def instance(self, inst: Any) -> Any:
        """What may be stored of one request instance."""
        return self._record(inst, self._modes_in, self.input_order, self._known_in)

    def output(self, out: Any) -> Any:
        """What may be stored of one answer."""
        return self._record(out, self._modes_out, self.output_order, self._known_out)

    def instances(self, items: Sequence[Any]) -> list[Any]:
        return [self.instance(i) for i in items]

    def message(self, text: str, instances: Sequence[Any] = ()) -> str:
        """A message that may quote the input (a model's error): each value of a personal
        field of ``instances`` replaced whole, then the rest scanned."""
        for inst in instances:
            pairs: Any = (inst.items() if isinstance(inst, Mapping) else
                          zip(self.input_order, inst, strict=False)
                          if isinstance(inst, list | tuple) else ())
            for name, v in pairs:
                mode = self._modes_in.get(name)
                if mode is not None and v is not None:
                    new = self.value(v, mode, text=name in self.text_fields)
                    text = _scrub(text, v, WHOLE if new is _DROPPED else new)
        return str(self.value(text, "redact", text=True))

    def explanation(self, body: Mapping[str, Any], instance: Any) -> dict[str, Any]:
        """What may be stored of an explanation of ``instance``.

        A text model's attributions are keyed by the instance's own words (``word@offset``
        by occlusion, the vectorizer's terms by the exact explainer). A word the stored
        instance no longer holds (redacted, pseudonymised or dropped) is not stored either:
        its key becomes ``<REDACTED>@offset``, or its term's value is added to one
        ``<REDACTED>`` term (the attributions still add up). Other keys (contract fields,
        the instance's own keys, words it still holds) stay.
        """
        stored = self.instance(instance)
        kept = {w.lower() for w in _WORD.findall(" ".join(_texts(stored)))}
        names = self._known_in | (set(instance) if isinstance(instance, Mapping) else set())
        out: dict[str, float] = {}
        for key, value in dict(body.get("attributions") or {}).items():
            word, at, offset = str(key).rpartition("@")
            if not (at and offset.isdigit()):
                word, offset = str(key), ""
            if key in names or all(w.lower() in kept for w in _WORD.findall(word)):
                out[key] = value
            elif offset:
                out[f"{WHOLE}@{offset}"] = value
            else:
                out[WHOLE] = out.get(WHOLE, 0.0) + value
        return {**body, "attributions": out}

    def detail(self, d: ErrorDetail) -> ErrorDetail:
        """An error detail whose ``got`` is a personal field's value, with that value hidden.

        The path names the field as ``instances[3].email`` or ``email``. A value at a path
        that names no contract field (a bare string instance, a key the contract does not
        hold) is scanned as text when redaction is on, in ``got`` and in the message.
        """
        if d.got is None:
            return d
        name = d.path.rsplit(".", 1)[-1].split("[", 1)[0]
        mode = self._modes_in.get(name) or self._modes_out.get(name)
        if mode is not None:
            got = WHOLE if mode in ("redact", "drop") else token(self.key, d.got)
            return ErrorDetail(d.path, d.rule, got, _scrub(d.message, d.got), d.line)
        if name in self._known_in or name in self._known_out:
            return d  # a field the contract keeps as sent
        got = self.loose(d.got)
        if got == d.got:
            return d
        return ErrorDetail(d.path, d.rule, got, _scrub(d.message, d.got, got), d.line)


def _texts(value: Any) -> list[str]:
    """Every string in ``value``, through arrays and objects."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


def _scrub(message: str, value: Any, instead: Any = WHOLE) -> str:
    """``message`` with ``value`` (quoted or not) replaced by ``instead``."""
    text = value if isinstance(value, str) else repr(value)
    if not text:
        return message
    return message.replace(repr(value), repr(instead)).replace(text, str(instead))


def no_scan(text: str, mode: Mode) -> str:
    """The scanner when none is installed: the whole text is personal."""
    raise LookupError("no scanner")


__all__ = ["WHOLE", "Mode", "Redactor", "Scanner", "no_scan", "token"]
