"""Every pattern is linear-time: no nested quantifier, and pathological texts scan fast."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from keelwork.core.pii import PiiAnalyzer, dates, names, phones, structured

_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def _patterns() -> list[re.Pattern[str]]:
    found: list[re.Pattern[str]] = []
    for module in (structured, phones, dates, names):
        for value in vars(module).values():
            if isinstance(value, re.Pattern):
                found.append(value)
            elif isinstance(value, type):
                found += [v for v in vars(value).values() if isinstance(v, re.Pattern)]
    return found


def _nested(items: Any, inside: bool) -> bool:
    """Whether a repeat occurs inside a repeat in this parsed (sub)pattern."""
    for op, av in items:
        if str(op) in _REPEATS:
            if inside:
                return True
            if _nested(av[2], True):
                return True
        else:
            for part in av if isinstance(av, tuple | list) else (av,):
                if hasattr(part, "data") and _nested(part, inside):
                    return True
                if isinstance(part, list) and any(hasattr(p, "data") and _nested(p, inside)
                                                  for p in part):
                    return True
    return False


def test_the_patterns_are_found() -> None:
    assert len(_patterns()) >= 15


@pytest.mark.parametrize("pattern", _patterns(), ids=lambda p: p.pattern[:40])
def test_no_pattern_nests_a_quantifier(pattern: re.Pattern[str]) -> None:
    parsed = re._parser.parse(pattern.pattern, pattern.flags)  # type: ignore[attr-defined]
    assert not _nested(parsed.data, False), pattern.pattern


def test_the_checker_catches_nested_quantifiers() -> None:
    for bad in (r"(a+)+", r"(?:\d[ -]?){12,18}", r"(x|y*)*", r"((ab)*c)+"):
        assert _nested(re._parser.parse(bad).data, False), bad  # type: ignore[attr-defined]
    assert not _nested(re._parser.parse(r"a+b*(?:cd)?").data, False)  # type: ignore[attr-defined]


N = 200_000
PATHOLOGICAL = {
    "digits": "1" * N, "spaced digits": "1 " * (N // 2), "dashed digits": "1-" * (N // 2),
    "letters": "a" * N, "at signs": "a@" * (N // 2), "local part": "a" * N + "@",
    "dots": "a." * (N // 2), "colons": ":" * N, "hex colons": "a:" * (N // 2),
    "plus digits": "+1 " * (N // 3), "parens": "(1) " * (N // 4), "www": "www." * (N // 4),
    "scheme": "http://" + "a" * N, "caps": "Aa " * (N // 3), "names": "John Smith " * (N // 11),
    "iban-ish": "GB82 " * (N // 5), "dates": "12/12/1212 " * (N // 11),
    "unicode": "É" * N, "mixed": "1.1.1.1:" * (N // 8),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_texts_scan_in_linear_time(name: str) -> None:
    analyzer = PiiAnalyzer(max_chars=10 * N, time_budget_s=60)
    text = PATHOLOGICAL[name]
    started = time.perf_counter()
    analyzer.analyze(text)
    # 200 KB: a linear scan takes well under a second even on a busy machine; a quadratic
    # pattern would take minutes
    assert time.perf_counter() - started < 4.0, name
