"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
no port, no extra package), for the browser tests (shared by several modules).

Without Chromium a test is skipped, unless ``$CI`` is set: then it fails, because CI must
install it (``scripts/test`` does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest


def find_chromium() -> str:
    """The Chromium binary; skips the test without one (fails it when $CI is set)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    reason = "Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


class DevTools:
    """Chromium over ``--remote-debugging-pipe``: JSON messages ended by NUL on fds 3 and 4."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # in the child: the pipe ends become its fds 3 (in) and 4 (out)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4),
            preexec_fn=fds)  # the test process starts no thread while it runs
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise AssertionError("no answer from Chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError("Chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method and e.get("sessionId") == session:
                    del self.events[i]
                    return
            self.events.append(self._read(max(0.1, deadline - time.monotonic())))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


def open_tab(tools: DevTools, url: str) -> tuple[str, str]:
    """Open ``url`` in a new tab brought to the front (a background tab is not painted) and
    wait for its load event; the tab's target id and DevTools session."""
    target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.call("Target.attachToTarget", {"targetId": target,
                                                   "flatten": True})["sessionId"]
    tools.call("Page.enable", session=session)
    tools.call("Page.bringToFront", session=session)
    tools.call("Page.navigate", {"url": url}, session=session)
    tools.wait_event("Page.loadEventFired", session)
    return target, session


def page_load(tools: DevTools, url: str) -> tuple[float, str]:
    """Open ``url`` in a new front tab; the page's own load time in seconds (navigation start
    to the end of its load event, as the browser times it: Chromium's start is not in it) and
    its DOM after load."""
    target, session = open_tab(tools, url)
    ended = 0.0
    dom = ""
    deadline = time.monotonic() + 10
    while ended <= 0 and time.monotonic() < deadline:  # loadEventEnd is set after the event
        out = tools.call("Runtime.evaluate", {
            "expression": "JSON.stringify([performance.getEntriesByType('navigation')[0]"
                          ".loadEventEnd, document.documentElement.outerHTML])",
            "returnByValue": True}, session=session)
        ended, dom = json.loads(out["result"]["value"])
        if ended <= 0:
            time.sleep(0.05)
    tools.call("Target.closeTarget", {"targetId": target})
    assert ended > 0, "the page's load event did not end"
    return ended / 1000.0, dom
