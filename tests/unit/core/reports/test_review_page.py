"""The ``/review`` page (keelwork.core.reports.review_page): what it shows of an item, its keys,
the text box of an output without classes, the empty queue, and a CSP that admits exactly its
own script."""

from __future__ import annotations

import base64
import hashlib
import re

from keelwork.core.reports.review_page import CSP, render_review_page
from keelwork.core.review_formats import Choice

ITEM = {"prediction_id": "p-1", "model": "m", "version": 3, "ts": 0.0, "reason": "random",
        "why": "a random sample", "inputs": {"text": "call <PHONE_NUMBER>", "n": [1, 2]},
        "outputs": {"label": "spam"}, "confidence": None}


def test_an_item_without_classes_gets_a_text_box() -> None:
    html = render_review_page(ITEM, reviewer="ana", choices=[], counts={"open": 4},
                              csrf="t0k", keys_on=True)
    assert 'id="free"' in html and "<kbd>/</kbd>type" in html
    assert "call &lt;PHONE_NUMBER&gt;" in html and "[1,2]" in html
    assert "{&quot;label&quot;:&quot;spam&quot;}" in html and "not scored" in html
    assert 'data-pid="p-1"' in html and 'data-csrf="t0k"' in html
    assert "4 open" in html and "has no API keys" not in html


def test_classes_are_buttons_with_their_keys() -> None:
    html = render_review_page({**ITEM, "confidence": 0.55}, reviewer="ana",
                              choices=[Choice(True, "true", "1"), Choice("x", "x", None)],
                              counts={}, csrf="", keys_on=False)
    assert 'data-key="1"' in html and 'data-label="true"' in html
    assert 'data-label="&quot;x&quot;"' in html and "<kbd>1</kbd>&hellip; pick" in html
    assert "55%" in html and "has no API keys" in html


def test_the_empty_queue_and_the_csp_hash_of_the_script() -> None:
    html = render_review_page(None, reviewer="ana", choices=[], counts={"done": 2}, csrf="",
                              keys_on=True)
    assert "Nothing left to review" in html and 'data-pid=""' in html
    [script] = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in CSP
