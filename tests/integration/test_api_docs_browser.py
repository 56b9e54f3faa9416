"""/docs (Swagger UI) and /redoc render in a real headless Chromium that cannot reach the internet.

FastAPI's stock pages load their scripts from a CDN and stay blank offline; keelwork serves
them from the package. Chromium is started with every host name unresolvable except loopback
and a dead proxy, so a page that needs anything from outside renders no operation at all.

Chromium is the Debian package ``chromium``. Without it the tests skip, unless ``$CI`` is set:
then they fail, because CI must install it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live_server import ADDER_SPEC, FIXTURES, running_server

#: Every host name fails to resolve except loopback's; anything else goes to a dead proxy.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           "--proxy-server=http://127.0.0.1:9")


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    reason = "Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = tmp_path_factory.mktemp("docs")
    (project / "keel.yaml").write_text(ADDER_SPEC.format(fx=FIXTURES))
    with running_server(project) as base:
        yield base


def _dom(chromium: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", *OFFLINE,
         # let the page's scripts fetch /openapi.json and render before the DOM is dumped
         "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _operation_ids(base: str) -> set[str]:
    doc = httpx.get(f"{base}/openapi.json", timeout=10).json()
    ids = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert len(ids) >= 5
    return ids


def test_swagger_ui_renders_every_operation_offline(chromium: str, live: str,
                                                    tmp_path: Path) -> None:
    dom = _dom(chromium, f"{live}/docs", tmp_path / "profile")
    rendered = set(re.findall(r'class="opblock opblock-[a-z]+[^"]*" id="operations-[^"]*?-'
                              r'([A-Za-z0-9_]+)"', dom))
    assert rendered == _operation_ids(live), dom[:2000]
    assert 'data-path="/v1/models/{name}:predict"' in dom


def test_redoc_renders_every_operation_offline(chromium: str, live: str, tmp_path: Path) -> None:
    dom = _dom(chromium, f"{live}/redoc", tmp_path / "profile")
    rendered = set(re.findall(r'data-section-id="operation/([A-Za-z0-9_]+)"', dom))
    assert rendered == _operation_ids(live), dom[:2000]
    assert 'operation-type post"' in dom  # the menu shows each method
