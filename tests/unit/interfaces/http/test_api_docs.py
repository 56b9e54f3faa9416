"""/docs and /redoc load every script, style and font from the app itself, never a CDN."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from keelwork.interfaces.http.api_docs import ASSETS, ASSETS_PATH, assets_dir, install_api_docs


def _app() -> FastAPI:
    app = FastAPI(title="t", docs_url=None, redoc_url=None)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"ok": "yes"}

    install_api_docs(app)
    return app


#: Every URL a page loads: src=/href= attributes, Swagger UI's url:, ReDoc's spec-url=.
_URL = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


def _urls(html: str) -> list[str]:
    return [a or b for a, b in _URL.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_reference_only_local_assets(page: str) -> None:
    with TestClient(_app()) as client:
        html = client.get(page).text
        urls = _urls(html)
        assert urls, html
        assert all(u.startswith("/") for u in urls), urls  # nothing from another host
        assert "cdn" not in html and "fonts.googleapis" not in html
        for url in urls:
            if url.startswith(ASSETS_PATH):
                r = client.get(url)
                assert r.status_code == 200 and len(r.content) > 1000, url


def test_the_assets_are_served_with_their_types() -> None:
    with TestClient(_app()) as client:
        js = client.get(f"{ASSETS_PATH}/swagger-ui-bundle.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert "SwaggerUIBundle" in js.text
        css = client.get(f"{ASSETS_PATH}/swagger-ui.css")
        assert "text/css" in css.headers["content-type"]
        assert client.get(f"{ASSETS_PATH}/redoc.standalone.js").status_code == 200
        assert client.get(f"{ASSETS_PATH}/../keelwork.py").status_code == 404
    assert all((assets_dir() / name).is_file() for name in ASSETS)


def test_pages_follow_the_root_path_behind_a_proxy() -> None:
    with TestClient(_app(), root_path="/keel") as client:
        html = client.get("/docs").text
        assert f"/keel{ASSETS_PATH}/swagger-ui-bundle.js" in html
        assert "'/keel/openapi.json'" in html or '"/keel/openapi.json"' in html
        assert "/keel/docs/oauth2-redirect" in html


def test_the_oauth2_redirect_page_is_served() -> None:
    with TestClient(_app()) as client:
        r = client.get("/docs/oauth2-redirect")
        assert r.status_code == 200 and "oauth2" in r.text.lower()
