"""The launch checklist page: every item with its result, escaped text, a bar as wide as the
counts, the verdict from the report's own ``ok``."""

from __future__ import annotations

import re

from keelwork.core.reports.check_html import render_check_html, status_bar

REPORT = {
    "ok": False, "service": "credit <prod>", "strict": False,
    "items": [
        {"name": "contract", "status": "pass", "detail": "3 input fields", "fix": "",
         "facts": {"inputs": 3}},
        {"name": "owners", "status": "fail", "detail": "no <b>on-call</b> contact",
         "fix": "set service.on_call.contact", "facts": {}},
        {"name": "kill_drill", "status": "not_checked", "detail": "skipped by --no-drills",
         "fix": "keel check", "facts": {}},
        {"name": "audit", "status": "pass", "detail": "chain of 4 entries", "fix": "",
         "facts": {"entries": 4}},
    ],
}


def test_every_item_is_a_row_with_its_result_and_fix() -> None:
    html = render_check_html(REPORT)
    rows = re.findall(r'<tr id="([^"]+)">', html)
    assert rows == ["contract", "owners", "kill_drill", "audit"]
    owners = html.split('<tr id="owners">')[1].split("</tr>")[0]
    assert ">FAIL<" in owners and "set service.on_call.contact" in owners
    assert "not ready: an item fails" in html and "Launch check: credit &lt;prod&gt;" in html


def test_user_text_is_escaped_and_the_page_has_no_script() -> None:
    html = render_check_html(REPORT)
    assert "<b>on-call</b>" not in html and "&lt;b&gt;on-call&lt;/b&gt;" in html
    assert "<script" not in html and "http" not in html.split("<style>")[0]


def test_the_bar_splits_by_status_in_proportion() -> None:
    widths = {m[1]: float(m[0]) for m in re.findall(
        r'width="([\d.]+)" height="26" fill="[^"]+"><title>([^:]+):', status_bar(
            {"pass": 2, "fail": 1, "not_checked": 1}))}
    assert widths == {"pass": 320.0, "FAIL": 160.0, "not checked": 160.0}
    assert "<rect" not in status_bar({"pass": 0, "fail": 0, "not_checked": 0})


def test_a_passing_report_says_ready() -> None:
    html = render_check_html({**REPORT, "ok": True, "items": REPORT["items"][:1]})
    assert "ready to launch: no item fails" in html
    strict = render_check_html({**REPORT, "strict": True})
    assert "an item fails or was not checked (--strict)" in strict
