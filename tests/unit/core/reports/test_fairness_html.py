"""The monitor page's fairness section: charts and tables from window entries, escaped."""

from __future__ import annotations

from keelwork.core.fairness import FairnessRules, GroupTally, fairness_report
from keelwork.core.reports.fairness_html import fairness_section


def _fairness(gap: float) -> dict:
    t = GroupTally(["sex"])
    for group, rate in (("<b>M</b>", 0.3 + gap), ("F", 0.3)):
        for i in range(500):
            t.add({"sex": group}, i < 500 * rate, i % 3 == 0)
    return fairness_report(t, FairnessRules(("sex",)), positive="yes")


def test_the_section_shows_the_latest_labelled_window_and_escapes_values() -> None:
    windows = [{"fairness": _fairness(0.0)}, {"fairness": _fairness(0.3)}, {}]
    html = "".join(fairness_section(["w1", "w2", "w3"], windows))
    assert "<h2>Fairness</h2>" in html and "sex: demographic parity difference" in html
    assert "<svg" in html  # the difference over the windows
    assert "&lt;b&gt;M&lt;/b&gt;" in html and "<b>M</b>" not in html
    assert "Latest window with labels (1000 labelled answers)" in html
    assert 'class="tag drift">alert<' in html  # the 0.3 gap of the latest window
    assert fairness_section(["w1"], [{}]) == []
