"""Mounting the REST API (switch.admin.rest), its docs' files and the web portal on the
switch's aiohttp application (issue 18).

- `/api/v1/...`: the FastAPI application through aiohttp-asgi, for every path under
  /api/v1 that no aiohttp route claims (the emergency location and provisioning codes
  keep theirs: aiohttp resolves the longest registered prefix first);
- `/api/v1/docs/static/`: the Swagger UI files the `fastapi-offline` package ships
  (Swagger UI 5, which reads OpenAPI 3.1; nothing fetched from the internet);
- `/portal/`: the web portal, static HTML and JavaScript shipped in the package
  (switch/admin/portal/), calling the API from the browser.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp_asgi import ASGIResource

from .auth import SessionTokens, install_sessions, load_or_create_key
from .rest import DOCS_STATIC, PREFIX, ApiContext, BodyLimit, build_rest_app

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.api")

PORTAL = Path(__file__).parent / "portal"


async def _portal_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/portal/index.html")


def mount(app: web.Application, switch: Switch, data_dir: Path) -> ApiContext:
    from switch.storage.admin_api import SqlAdminApi

    sessions = SessionTokens(load_or_create_key(data_dir))
    install_sessions(sessions)
    ctx = ApiContext(switch=switch, store=SqlAdminApi(switch.engine), sessions=sessions,
                     data_dir=data_dir)
    try:  # Swagger UI 5 (OpenAPI 3.1), as the fastapi-offline package ships it
        import fastapi_offline

        app.router.add_static(DOCS_STATIC, Path(fastapi_offline.__file__).parent / "static")
    except ImportError:  # the docs page then lacks its script; the API itself works
        log.warning("fastapi-offline is not installed: /api/v1/docs has no files")
    app.router.add_get("/portal", _portal_index)
    app.router.add_get("/portal/", _portal_index)
    app.router.add_static("/portal", PORTAL)
    app.router.register_resource(ASGIResource(BodyLimit(build_rest_app(ctx)),
                                              root_path=PREFIX))
    return ctx
