"""Model references as requests write them: ``NAME``, ``NAME@ALIAS``, ``NAME@3``, ``NAME:3``.

A request names the model in its path and may pick an alias or a version three ways: after the
name in the path (``/v1/models/credit@champion:predict``, ``credit@3``, ``credit:3``), in the
V2 version segment (``/v2/models/credit/versions/3/infer``) or in the ``x-keel-model-ref``
header (``champion``, ``3``, or the whole ``credit@champion``). Everything here is checked before
the registry is asked, so a malformed reference is the client's mistake (400, naming where it
came from and the accepted forms), never a server error.

Refs handed on to the gateway are normalised: ``None`` (the champion, or where the rollout or a
flag sends the request), an alias, or a version number as decimal text.
"""

from __future__ import annotations

import re

from keelwork.core.registry import MAX_VERSION, is_version_text, shown_text
from keelwork.errors import ErrorDetail, ModelRefError

#: Header naming an alias or a version, when the path does not.
MODEL_REF_HEADER = "x-keel-model-ref"

# The registry's rule for names and aliases (keelwork.core.registry), matched in full.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_NAME_RULE = ("starts with a letter or digit and holds only letters, digits, '_', '.', '-' "
              "(at most 128 characters)")

#: Where a reference came from, as error details name it.
PATH = "path:name"
VERSION_PATH = "path:version"
HEADER = f"header:{MODEL_REF_HEADER}"


def accepted_forms(name: str | None = None) -> str:
    """The forms a request may use, with ``name`` in the examples when it is a valid name."""
    n = name if name is not None and _NAME_RE.fullmatch(name) else "NAME"
    return (f"address a model as '{n}', '{n}@ALIAS' (e.g. '{n}@champion'), '{n}@VERSION' or "
            f"'{n}:VERSION' (e.g. '{n}@1', '{n}:1') in the path, or send the alias or version "
            f"alone in the {MODEL_REF_HEADER} header (e.g. 'champion', '1')")


def _bad(where: str, text: str, problem: str, name: str | None) -> ModelRefError:
    shown = shown_text(text)
    return ModelRefError(
        f"The model reference {shown} ({where}) is malformed: {problem}; "
        f"{accepted_forms(name)}.",
        [ErrorDetail(where, "model_ref", _clip(text), problem)])


def _clip(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "..."


def check_ref(ref: str, *, where: str = HEADER, name: str | None = None,
              text: str | None = None) -> str:
    """``ref`` (an alias or a version number) normalised, or a 400-worthy error.

    Args:
        ref: The alias or version text, as received (no name).
        where: Where it came from (error details' path).
        name: The model name, for the examples in the message.
        text: The whole reference ``ref`` is part of, for the message (default: ``ref``).

    Raises:
        ModelRefError: empty, not a valid alias and not a version from 1 to the maximum.
    """
    whole = ref if text is None else text
    if ref == "":
        raise _bad(where, whole, "the alias or version is empty", name)
    if ref.isascii() and ref.isdigit():
        if not is_version_text(ref):
            raise _bad(where, whole, f"a version is an integer from 1 to {MAX_VERSION}; got "
                                     f"{shown_text(ref, 40)}", name)
        return str(int(ref))
    if "@" in ref:
        raise _bad(where, whole, "'@' may appear once, between the name and the alias", name)
    if not _NAME_RE.fullmatch(ref):
        raise _bad(where, whole, f"the alias {shown_text(ref, 40)} is not valid (an alias "
                                 f"{_NAME_RULE}; a version is a positive integer)", name)
    return ref


def split_ref(text: str, *, where: str = PATH, hint: str | None = None
              ) -> tuple[str, str | None]:
    """``credit`` / ``credit@champion`` / ``credit@3`` / ``credit:3`` -> (name, ref).

    ``hint``: the model name the examples of an error message use when ``text``'s is invalid.

    Raises:
        ModelRefError: the name, alias or version is malformed, or both '@' and ':' are used.
    """
    if "@" in text and ":" in text:
        raise _bad(where, text, "it names both an alias ('@') and a version (':')",
                   text.partition("@")[0].partition(":")[0] or hint)
    if "@" in text:
        name, _, ref = text.partition("@")
        _check_name(name, text, where, hint)
        return name, check_ref(ref, where=where, name=name, text=text)
    if ":" in text:
        name, _, number = text.partition(":")
        _check_name(name, text, where, hint)
        if not (number.isascii() and number.isdigit()):
            raise _bad(where, text, "after ':' comes a version number", name)
        return name, check_ref(number, where=where, name=name, text=text)
    _check_name(text, text, where, hint)
    return text, None


def _check_name(name: str, text: str, where: str, hint: str | None) -> None:
    if not _NAME_RE.fullmatch(name):
        raise _bad(where, text, f"the model name {shown_text(name)} is not a model name (a "
                                f"model name {_NAME_RULE})", hint)


def request_ref(path_name: str, header: str | None = None,
                version: str | None = None) -> tuple[str, str | None]:
    """The model and the normalised ref a request asks for (path, V2 version, header).

    The header may hold an alias or version alone, or a whole reference to the path's model.
    When two places name a ref they must agree.

    Args:
        path_name: The model segment of the path (``credit``, ``credit@champion``).
        header: The ``x-keel-model-ref`` header, if sent.
        version: The V2 ``versions/{version}`` path segment, if any.

    Returns:
        ``(name, ref)``; ``ref`` is None when nothing names one.

    Raises:
        ModelRefError: a malformed reference, or two places naming different ones.
    """
    name, ref = split_ref(path_name, where=PATH)
    sources: list[tuple[str, str]] = [] if ref is None else [(PATH, ref)]
    if version is not None:
        sources.append((VERSION_PATH, check_ref(version, where=VERSION_PATH, name=name)))
    if header is not None and header.strip():
        text = header.strip()
        if "@" in text or ":" in text:
            h_name, h_ref = split_ref(text, where=HEADER, hint=name)
            if h_name != name:
                raise _bad(HEADER, text, f"it names the model {shown_text(h_name)} but the "
                                         f"path names {shown_text(name)}", name)
            if h_ref is not None:
                sources.append((HEADER, h_ref))
        else:
            sources.append((HEADER, check_ref(text, where=HEADER, name=name)))
    if not sources:
        return name, None
    first_where, first = sources[0]
    for where, other in sources[1:]:
        if other != first:
            raise ModelRefError(
                f"The request names two model references: {shown_text(first)} ({first_where})"
                f" and {shown_text(other)} ({where}); send one.",
                [ErrorDetail(where, "model_ref_conflict", other,
                             f"{first_where} names {shown_text(first)}")])
    return name, first
