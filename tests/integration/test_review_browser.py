"""``/review`` in a real browser: a reviewer logs in with a ``review`` key, judges an item with
the keyboard only, and the verdict is the prediction's label within a second, attributed to the
key's name; ``s`` skips the next item.

A real ``keel serve`` of an iris classifier whose output contract lists the classes; predictions
through HTTP, the queue filled by ``keel review fill``; headless Chromium (the Debian package)
driven over the DevTools protocol (:mod:`chromium_tools`), keys pressed with
``Input.dispatchKeyEvent`` as a keyboard would send them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chromium_tools import DevTools, find_chromium
from fixtures.models import iris_data, sklearn_iris
from journey import keel
from keelwork.adapters.stores.engine import make_engine
from keelwork.adapters.stores.label_store import LabelStore
from keelwork.spec import load_spec
from live_server import running_server

SPEC = """\
service: {{name: flowers, owners: [t@example.com]}}
models:
  - name: iris
    runtime: sklearn
    artifact: {artifact}
    options: {{feature_names: [sepal_length, sepal_width, petal_length, petal_width]}}
contract:
  inputs:
    - {{name: sepal_length, type: float}}
    - {{name: sepal_width, type: float}}
    - {{name: petal_length, type: float}}
    - {{name: petal_width, type: float}}
  outputs:
    - {{name: species, type: category, categories: [0, 1, 2]}}
review: {{budget_per_day: 5, random_share: 0.0}}
"""
NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
KEYS = {"2": ("Digit2", 50), "s": ("KeyS", 83), "Enter": ("Enter", 13)}


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


def _press(tools: DevTools, session: str, key: str) -> None:
    code, vk = KEYS[key]
    text = "\r" if key == "Enter" else key
    for kind in ("keyDown", "keyUp"):
        tools.call("Input.dispatchKeyEvent", {
            "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk,
            **({"text": text} if kind == "keyDown" else {})}, session=session)


def _eval(tools: DevTools, session: str, expression: str) -> Any:
    out = tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                          "awaitPromise": True}, session=session)
    return out["result"].get("value")


def _shown(tools: DevTools, session: str, timeout: float = 10) -> str:
    """The prediction id the page shows, once the page has one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _eval(tools, session, "document.querySelector('main') ? "
                    "document.querySelector('main').dataset.pid : ''")
        if pid:
            return str(pid)
        time.sleep(0.05)
    raise AssertionError("the page shows no item")


def test_a_reviewer_judges_with_the_keyboard(chromium: str, tmp_path: Path) -> None:
    model = sklearn_iris(tmp_path)
    (tmp_path / "keel.yaml").write_text(SPEC.format(artifact=model.artifact))
    key = keel(tmp_path, "keys", "create", "--scope", "review", "--name", "ana").stdout.strip()
    assert key.startswith("kw_")
    x, _ = iris_data()
    rows = [dict(zip(NAMES, map(float, r), strict=True)) for r in x[::3]]
    with running_server(tmp_path) as base:
        assert httpx.post(f"{base}/v1/models/iris:predict", json={"instances": rows},
                          timeout=30).status_code == 200
        filled = json.loads(keel(tmp_path, "review", "fill", "--json").stdout)
        assert filled["queued"] == {"uncertain": 5}
        engine = make_engine(load_spec(tmp_path / "keel.yaml").storage_url)
        tools = DevTools(chromium, tmp_path / "profile")
        try:
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target,
                                                           "flatten": True})["sessionId"]
            tools.call("Page.enable", session=session)
            tools.call("Page.bringToFront", session=session)
            tools.call("Page.navigate", {"url": f"{base}/review"}, session=session)
            tools.wait_event("Page.loadEventFired", session)
            assert "review</code> scope" in _eval(tools, session, "document.body.innerHTML")
            # The key typed into the form, as a person would; the form posts it.
            _eval(tools, session, f"document.querySelector('input[name=key]').value = "
                  f"{json.dumps(key)}; document.querySelector('form').submit(); true")
            tools.wait_event("Page.loadEventFired", session)
            first = _shown(tools, session)
            text = _eval(tools, session, "document.body.innerText")
            assert "Reviewing as ana" in text and "the model was unsure" in text
            assert "sepal_length" in text and "confidence" in text
            assert key not in _eval(tools, session, "document.documentElement.outerHTML")
            labels = LabelStore(engine)
            assert labels.get(first) is None
            _press(tools, session, "2")
            assert _eval(tools, session, "document.querySelector("
                         "'button[data-key=\"2\"]').getAttribute('aria-pressed')") == "true"
            pressed = time.monotonic()
            _press(tools, session, "Enter")
            while (stored := labels.get(first)) is None and time.monotonic() - pressed < 5:
                time.sleep(0.02)
            landed = time.monotonic() - pressed
            assert stored is not None and (stored.label, stored.source) == (2, "review:ana")
            print(f"\nverdict stored {landed * 1000:.0f} ms after Enter")
            assert landed < 1.0, landed
            tools.wait_event("Page.loadEventFired", session)
            second = _shown(tools, session)
            assert second != first
            _press(tools, session, "s")
            tools.wait_event("Page.loadEventFired", session)
            third = _shown(tools, session)
            assert third not in (first, second)
            assert labels.get(second) is None
            tools.call("Target.closeTarget", {"targetId": target})
        finally:
            tools.close()
            engine.dispose()
    audited = json.loads(keel(tmp_path, "audit", "show", "--action", "review.label",
                              "--json").stdout)
    assert [(e["actor"], e["target"]) for e in audited] == [("ana", first)]
