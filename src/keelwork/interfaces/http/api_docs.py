"""``/docs`` (Swagger UI) and ``/redoc`` served with their scripts from the package, not a CDN.

FastAPI's own pages load swagger-ui and redoc from jsdelivr (and redoc its fonts from Google):
on a machine without internet they stay blank. The ``fastapi-offline`` package ships the same
assets (swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js); they are mounted under
:data:`ASSETS_PATH` and the pages point there, relative to the app's ``root_path`` so the docs
also work behind a proxy prefix.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

#: Where the bundled scripts and styles are served.
ASSETS_PATH = "/docs-assets"
#: The files the pages load (all in the package; tests check they exist).
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_dir() -> Path:
    """The folder of the bundled Swagger UI and ReDoc assets.

    Raises:
        RuntimeError: the ``fastapi-offline`` package (a base dependency) is missing or lacks
            an asset.
    """
    try:
        folder = Path(str(resources.files("fastapi_offline").joinpath("static")))
    except ModuleNotFoundError as exc:
        raise RuntimeError("The API docs need the 'fastapi-offline' package (a dependency of "
                           "keelwork): pip install fastapi-offline") from exc
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"The API docs assets {', '.join(missing)} are missing from "
                           f"{folder}; reinstall fastapi-offline.")
    return folder


def install_api_docs(app: FastAPI, *, docs_url: str = "/docs",
                     redoc_url: str = "/redoc") -> None:
    """Add the offline ``/docs`` and ``/redoc`` pages to ``app``.

    The app must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).

    Args:
        app: The FastAPI app whose OpenAPI document the pages show.
        docs_url: Path of the Swagger UI page.
        redoc_url: Path of the ReDoc page.
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - API docs",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters)

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        # no Google fonts either: the page must not reach out anywhere
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png", with_google_fonts=False)


__all__ = ["ASSETS", "ASSETS_PATH", "assets_dir", "install_api_docs"]
