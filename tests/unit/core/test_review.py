"""The review queue's rules (keelwork.core.review): what enters within a budget, agreement."""

from __future__ import annotations

import pytest

from keelwork.core.review import Candidate, agreement, select, uncertainty


def test_guard_flagged_first_then_most_uncertain_then_random() -> None:
    cands = [Candidate(f"p{i}", i / 10) for i in range(10)]
    cands.append(Candidate("odd", 0.0, guard="out_of_distribution"))
    cands.append(Candidate("other-guard", 0.0, guard="output_contract"))
    picks = select(cands, 5, random_share=0.4, guards=["out_of_distribution"], seed=1)
    assert [p.reason for p in picks] == ["guard:out_of_distribution", "uncertain",
                                         "uncertain", "random", "random"]
    assert [p.prediction_id for p in picks[:3]] == ["odd", "p9", "p8"]
    assert len({p.prediction_id for p in picks}) == 5
    assert select(cands, 0, random_share=0.5, guards=[]) == []


def test_without_probabilities_only_random_picks_are_made() -> None:
    cands = [Candidate(f"p{i}", None) for i in range(20)]
    picks = select(cands, 6, random_share=0.1, guards=[])
    assert len(picks) == 6 and {p.reason for p in picks} == {"random"}


def test_uncertainty_is_least_confidence() -> None:
    assert uncertainty([0.2, 0.8]) == pytest.approx(0.2)
    assert uncertainty(None) is None


def test_agreement_and_kappa_match_scikit_learn() -> None:
    from sklearn.metrics import cohen_kappa_score

    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("a", "a"), ("c", "a")]
    got = agreement(pairs)
    assert got.items == 6 and got.agreed == 4
    assert got.kappa == pytest.approx(cohen_kappa_score([a for a, _ in pairs],
                                                        [b for _, b in pairs]), abs=1e-12)
    assert agreement([]).kappa is None
