"""The shipped model's quality on the committed held-out set (tests/fixtures/
injection_heldout.jsonl: hand-written, never trained on). Thresholds are what was measured
(benchmarks/RESULTS.md, "Prompt-injection guard"; the ninth build's counts, kind by kind), and
the issue's target (balanced accuracy >= 0.92 with <= 2% look-alike false positives) is a plain
test since that build."""

from __future__ import annotations

import json
from pathlib import Path

from keelwork.core.injection.model import shipped_model

HELDOUT = Path(__file__).resolve().parents[3] / "fixtures" / "injection_heldout.jsonl"


def _rates() -> tuple[float, float, dict[str, float]]:
    m = shipped_model()
    rows = [json.loads(line) for line in HELDOUT.read_text("utf-8").splitlines() if line]
    hits: dict[str, list[bool]] = {}
    for r in rows:
        hits.setdefault(r["kind"], []).append(m.score(r["text"]) >= m.threshold)
    attacks = [h for k, v in hits.items() if k != "benign_lookalike" for h in v]
    recall = sum(attacks) / len(attacks)
    fpr = sum(hits["benign_lookalike"]) / len(hits["benign_lookalike"])
    by_kind = {k: sum(v) / len(v) for k, v in hits.items()}
    return recall, fpr, by_kind


def test_measured_quality_holds() -> None:
    recall, fpr, by_kind = _rates()
    # Measured (2026-12-06, session 15, the build shipped as "ninth run" in
    # benchmarks/RESULTS.md: the packages' instructions addressed to the AI in tool-output
    # fields with benign twins, cues for an AI addressed in a note or spoken to; chosen on
    # scripts/injection_dev.py and injection_dev2-4.py, this set scored once at the end):
    # recall 0.895 (94 of 105), look-alike FPR 0.02 (1 of 50), balanced accuracy 0.938.
    # Eighth build: 0.867 / 0.02 / 0.923 (direct 21 of 25, tool output 14 of 20).
    # Seventh build: 0.838 / 0.02 / 0.909; fifth: 0.800 / 0.02 / 0.890; third: 0.714 /
    # 0.04 / 0.839; second: 0.657 / 0.02 / 0.819; the first model measured 0.829 / 0.02 /
    # 0.896 here but flagged 58.7% of Amazon reviews
    # (tests/unit/core/injection/test_injection_ordinary_text.py).
    assert (recall + 1 - fpr) / 2 >= 0.935  # the ninth build's count: one catch fewer is 0.933
    assert fpr <= 0.02
    for kind in ("enc_hex", "enc_homoglyph", "enc_alt_text", "enc_leet", "enc_spaced",
                 "enc_base64", "enc_zero_width"):
        assert by_kind[kind] == 1.0, kind
    for kind in ("enc_rot13", "enc_hidden_span", "enc_html_comment"):
        assert by_kind[kind] >= 0.75, kind
    for kind in ("lang_fr", "lang_es", "lang_it"):
        assert by_kind[kind] == 1.0, kind
    assert by_kind["lang_de"] >= 0.8
    assert by_kind["direct_en"] >= 0.88
    assert by_kind["indirect_tool"] >= 0.8


def test_the_issue_s_balanced_accuracy_target() -> None:
    # The issue's target: balanced accuracy >= 0.92 on held-out data with <= 2% look-alike
    # false positives; met since the eighth build (0.923; the ninth 0.938, 1 of 50 look-alikes
    # flagged; its misses: three of 25 short direct attacks, four of twenty injections through
    # tool output, one German attack, one each of the rot13, hidden-span and HTML-comment
    # attacks).
    recall, fpr, _ = _rates()
    assert (recall + 1 - fpr) / 2 >= 0.92 and fpr <= 0.02
