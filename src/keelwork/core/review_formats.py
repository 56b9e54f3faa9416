"""Review verdicts in the formats of labelling tools, and the label choices a reviewer has (pure).

``keel review export`` writes the queue as Label Studio tasks or Argilla records, each carrying
the keelwork prediction id (``data.keelwork.prediction_id``, ``metadata.prediction_id``);
:func:`parse_verdicts` reads back what those tools return once people have labelled them:

- **Label Studio** (JSON export of tasks): each task's ``annotations``, one verdict per
  annotation; the value of its ``label`` result (``choices``, ``text``, ``number`` or
  ``rating``); the annotator is ``completed_by`` (a user id, or an object with ``email``).
  Cancelled annotations are skipped.
- **Argilla** (records as the SDK's ``to_dict``/``to_json`` or the REST API write them): the
  ``label`` question's responses, as ``{"label": [{"value", "user_id"}]}``, as a list of
  ``{"question_name", "value", "user_id", "status"}`` or as a list of
  ``{"values": {"label": {"value"}}, "user_id", "status"}``. Only submitted responses count
  (``discarded`` and ``draft`` are skipped).

A file is a JSON array of records, one record, or JSON Lines. Each verdict names where it came
from (``record 3`` or ``line 4``) so that a refusal can be found in the file. A tool writes a
choice as text: :func:`coerce` turns it back into the contract's type.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from keelwork.spec.contract import FieldSpec

FORMATS = ("label-studio", "argilla")
#: The question (Argilla) and control (Label Studio) the export names.
QUESTION = "label"
#: Keys that pick a label on the review page, in order; ``s`` (skip) and ``n`` (next) are kept.
CHOICE_KEYS = "1234567890abcdefghijklmopqrtuvwxyz"
_LS_VALUE_KEYS = ("choices", "text", "number", "rating", "taxonomy")


@dataclass(frozen=True, slots=True)
class Choice:
    """A label a reviewer can pick: its value, its text and its key (None: click only)."""

    value: Any
    text: str
    key: str | None


def choices(outputs: Sequence[FieldSpec]) -> list[Choice]:
    """The labels the first output of the contract can take (empty: a free value).

    A category output gives its categories; a boolean one ``false``/``true``. Classes that are
    each one key (``0``, ``1``, ``2``; ``a``, ``b``) are picked by that key; others by their
    position (``1``, ``2``, ... then letters).
    """
    if not outputs:
        return []
    first = outputs[0]
    values: list[Any]
    if first.type == "category" and first.categories:
        values = list(first.categories)
    elif first.type == "boolean":
        values = [False, True]
    else:
        return []
    texts = [_text(v) for v in values]
    if len(set(texts)) == len(texts) and all(len(t) == 1 and t in CHOICE_KEYS for t in texts):
        return [Choice(v, t, t) for v, t in zip(values, texts, strict=True)]  # 0/1/2: own key
    return [Choice(v, t, CHOICE_KEYS[i] if i < len(CHOICE_KEYS) else None)
            for i, (v, t) in enumerate(zip(values, texts, strict=True))]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def coerce(value: Any, outputs: Sequence[FieldSpec]) -> Any:
    """``value`` as the contract's first output holds it, when it is text a tool wrote.

    A value that cannot be converted is returned as it is (the label check refuses it with
    the contract's message). Without outputs, text that is JSON is read as JSON (as
    ``keel review label`` reads its argument).
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not outputs:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return value
    first = outputs[0]
    if first.type == "category" and first.categories:
        return next((c for c in first.categories if _text(c) == text), value)
    if first.type == "boolean":
        return {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), value)
    if first.type == "integer":
        try:
            return int(text)
        except ValueError:
            return value
    if first.type == "float":
        try:
            number = float(text)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


@dataclass(frozen=True, slots=True)
class ImportedVerdict:
    """One verdict read from a tool's file, or why that record gives none.

    ``problem``: the record is malformed (refused); ``skipped``: it carries no verdict yet
    (not labelled, cancelled, a draft).
    """

    where: str
    prediction_id: str | None
    reviewer: str | None = None
    label: Any = None
    problem: str | None = None
    skipped: str | None = None


def read_records(text: str) -> list[tuple[str, Any]]:
    """``(where, record)`` of a JSON array, one JSON object, or JSON Lines.

    Raises:
        ValueError: the text is none of these (the message names the bad line).
    """
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = None
        out: list[tuple[str, Any]] = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((f"line {n}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"line {n} is not JSON ({exc}); a file to import is a JSON "
                                 "array of records or JSON Lines.") from None
        return out
    if isinstance(doc, dict):
        return [("record 1", doc)]
    if isinstance(doc, list):
        return [(f"record {i}", r) for i, r in enumerate(doc, start=1)]
    raise ValueError("a file to import is a JSON array of records, one record or JSON Lines; "
                     f"got a JSON {type(doc).__name__}.")


def parse_verdicts(fmt: str, text: str, outputs: Sequence[FieldSpec]) -> list[ImportedVerdict]:
    """Every verdict in a Label Studio (``label-studio``) or Argilla (``argilla``) file.

    Raises:
        ValueError: an unknown format, or text that is not JSON / JSON Lines.
    """
    if fmt not in FORMATS:
        raise ValueError(f"The format must be {' or '.join(FORMATS)}; got {fmt!r}.")
    parse = _label_studio if fmt == "label-studio" else _argilla
    out: list[ImportedVerdict] = []
    for where, record in read_records(text):
        if not isinstance(record, Mapping):
            out.append(ImportedVerdict(where, None, problem="is not a JSON object"))
            continue
        for v in parse(where, record):
            if v.problem is None and v.skipped is None:
                v = ImportedVerdict(v.where, v.prediction_id, v.reviewer,
                                    coerce(v.label, outputs))
            out.append(v)
    return out


def _pid(where: str, value: Any, field: str) -> str | ImportedVerdict:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return ImportedVerdict(where, None, problem=f"has no {field}: keel review export writes it, "
                           "and it links the verdict to the logged prediction")


def _label_studio(where: str, task: Mapping[str, Any]) -> Iterator[ImportedVerdict]:
    data = task.get("data")
    meta = data.get("keelwork") if isinstance(data, Mapping) else None
    pid = _pid(where, meta.get("prediction_id") if isinstance(meta, Mapping) else None,
               "data.keelwork.prediction_id")
    if isinstance(pid, ImportedVerdict):
        yield pid
        return
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        yield ImportedVerdict(where, pid, problem="'annotations' is not a list")
        return
    if not annotations:
        yield ImportedVerdict(where, pid, skipped="not annotated yet")
    for i, ann in enumerate(annotations):
        at = f"{where} annotation {i + 1}"
        if not isinstance(ann, Mapping):
            yield ImportedVerdict(at, pid, problem="is not a JSON object")
            continue
        if ann.get("was_cancelled"):
            yield ImportedVerdict(at, pid, skipped="cancelled (skipped) in Label Studio")
            continue
        who = ann.get("completed_by")
        if isinstance(who, Mapping):
            who = who.get("email") or who.get("id")
        if who is None or who == "":
            who = f"annotation-{ann.get('id', i + 1)}"
        value, problem = _ls_value(ann.get("result"))
        if problem is not None:
            yield ImportedVerdict(at, pid, problem=problem)
            continue
        yield ImportedVerdict(at, pid, f"label-studio:{who}", value)


def _ls_value(result: Any) -> tuple[Any, str | None]:
    """``(value, None)`` of the ``label`` result (or of the only one), else ``(None, why)``."""
    if not isinstance(result, list) or not result:
        return None, "has no result"
    items = [r for r in result if isinstance(r, Mapping)]
    named = [r for r in items if r.get("from_name") == QUESTION]
    pick = named[0] if named else items[0] if len(items) == 1 else None
    if pick is None:
        return None, f"has several results and none from_name '{QUESTION}'"
    value = pick.get("value")
    if isinstance(value, Mapping):
        for key in _LS_VALUE_KEYS:
            got = value.get(key)
            if isinstance(got, list):
                if len(got) != 1:
                    return None, f"its '{key}' holds {len(got)} values; a verdict is one label"
                got = got[0]
            if got is not None:
                return got, None
    return None, f"its result has none of {', '.join(_LS_VALUE_KEYS)}"


def _argilla(where: str, record: Mapping[str, Any]) -> Iterator[ImportedVerdict]:
    meta = record.get("metadata")
    pid = _pid(where, meta.get("prediction_id") if isinstance(meta, Mapping) else None,
               "metadata.prediction_id")
    if isinstance(pid, ImportedVerdict):
        yield pid
        return
    responses = record.get("responses") or []
    flat: list[tuple[Any, Any, Any]] = []  # (user, value, status)
    if isinstance(responses, Mapping):
        for r in responses.get(QUESTION) or []:
            if isinstance(r, Mapping):
                flat.append((r.get("user_id"), r.get("value"), r.get("status", "submitted")))
    elif isinstance(responses, list):
        for r in responses:
            if not isinstance(r, Mapping):
                continue
            if isinstance(r.get("values"), Mapping):
                got = r["values"].get(QUESTION)
                value = got.get("value") if isinstance(got, Mapping) else None
                flat.append((r.get("user_id"), value, r.get("status", "submitted")))
            elif r.get("question_name", QUESTION) == QUESTION:
                flat.append((r.get("user_id"), r.get("value"), r.get("status", "submitted")))
    else:
        yield ImportedVerdict(where, pid, problem="'responses' is neither a list nor an object")
        return
    if not flat:
        yield ImportedVerdict(where, pid, skipped="no response yet")
    for i, (user, value, status) in enumerate(flat):
        at = f"{where} response {i + 1}"
        if status != "submitted":
            yield ImportedVerdict(at, pid, skipped=f"response {status}, not submitted")
        elif value is None:
            yield ImportedVerdict(at, pid, problem=f"has no value for the question '{QUESTION}'")
        else:
            yield ImportedVerdict(at, pid, f"argilla:{user or f'response-{i + 1}'}", value)


__all__ = ["CHOICE_KEYS", "FORMATS", "QUESTION", "Choice", "ImportedVerdict", "choices",
           "coerce", "parse_verdicts", "read_records"]
