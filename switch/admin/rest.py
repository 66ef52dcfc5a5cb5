"""The admin and self-service REST API (issue 18): a FastAPI application served by the
switch's own aiohttp server, on the same HTTP port and the same event loop.

Why FastAPI inside aiohttp: the OpenAPI 3 document is generated from the code (the routes'
pydantic models and type hints), so it cannot drift from what the routes accept; FastAPI
is the most used and best kept Python framework doing that, and its dependencies give one
place for authentication and scoping. aiohttp stays the server (health, metrics,
provisioning, voicemail and their contracts are unchanged); `aiohttp-asgi` hands it every
request under /api/v1 that no aiohttp route claims (aiohttp resolves the longest path
prefix first). One process, one loop: the routes call the running services directly.
The interactive docs use the Swagger UI files of the `fastapi-offline` package, served
locally: nothing is fetched from the internet at run time.

Errors answer `{"error": "..."}` like the rest of the HTTP port. A missing or bad token:
401; anything outside the caller's scope, or that does not exist: 404 (the same answer,
so nothing leaks that it exists); repeated bad tokens or passwords: the failure guard of
SIP digest (late answers, then 429 with Retry-After).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from devices.logsafe import printable
from dialplan import Customer, User
from switch.storage.admin_api import SqlAdminApi

from .auth import (
    Principal,
    Role,
    SessionTokens,
    bad_token,
    env_admin_token,
)

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.api")

PREFIX = "/api/v1"
MAX_BODY = 16 * 1024
MAX_PLAN_BODY = 8 * 1024 * 1024  # a whole dialplan (PUT /plan), an announcement's audio
DOCS_STATIC = f"{PREFIX}/docs/static"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ErrorBody(BaseModel):
    error: str


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad request"},
    401: {"model": ErrorBody, "description": "missing or bad token"},
    404: {"model": ErrorBody, "description": "not found, or outside the caller's scope"},
    413: {"model": ErrorBody, "description": "body too large"},
    422: {"model": ErrorBody, "description": "invalid field"},
    429: {"model": ErrorBody, "description": "too many failures (Retry-After)"},
}


def not_found() -> HTTPException:
    return HTTPException(404, "not found")


@dataclass
class ApiContext:
    """What the routes use: the running switch, the token store and the sessions."""

    switch: Switch
    store: SqlAdminApi
    sessions: SessionTokens
    data_dir: Path
    clock: Callable[[], float] = time.time
    extras: dict[str, Any] = field(default_factory=dict)

    # -- scope --

    def customer(self, principal: Principal, customer_id: str) -> Customer:
        """`customer_id` if the principal may see it; else 404, as for an unknown one."""
        if principal.is_admin and principal.sees(customer_id):
            for c in self.switch.plan_holder.plan.customers:
                if c.id == customer_id:
                    return c
        raise not_found()

    def user(self, principal: Principal, customer_id: str, number: str) -> User:
        customer = self.customer(principal, customer_id)
        for site in customer.sites:
            for user in site.users:
                if user.full_number == number or user.public_number == number:
                    return user
        raise not_found()

    def me(self, principal: Principal) -> User:
        """The logged-in user's line in the running plan (404 once it left the plan)."""
        if principal.role is not Role.USER or principal.aor is None:
            raise not_found()
        user = self.switch.accounts.user_for_aor(principal.aor)
        if user is None:
            raise not_found()
        return user

    # -- audit --

    async def audit(self, principal: Principal, request: Request, action: str, target: str,
                    detail: dict[str, Any] | None = None, customer: str | None = None) -> None:
        """Every change by an operator or customer admin (and a user's own changes too:
        cheap, and support asks for them)."""
        source = request.client.host if request.client else "?"
        await self.store.audit(at=self.clock(), actor=principal.name,
                               role=principal.role.value,
                               customer=customer if customer is not None else principal.customer,
                               action=action, target=target, detail=detail or {},
                               source=source)
        log.info("api change actor=%s action=%s target=%s source=%s", printable(principal.name),
                 action, printable(target), printable(source))


_bearer = HTTPBearer(auto_error=False, description="an API token (operator or customer "
                     "admin) or a user's session token from POST /api/v1/session")


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def principal(request: Request,
                    creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
                    ctx: ApiContext = Depends(context)) -> Principal:
    """The caller, from its Bearer token; 401 otherwise (a wrong token is counted in the
    failure guard per source: slowed, then 429)."""
    now = ctx.clock()
    token = creds.credentials if creds is not None else ""
    if token:
        if env_admin_token(token):
            return Principal(Role.OPERATOR, "env:WTE_ADMIN_TOKEN")
        found = ctx.sessions.verify(token, now)
        if found is not None:
            return found
        info = await ctx.store.find_token(token)
        if info is not None:
            role = Role(info.role)
            return Principal(role, f"token:{info.id}:{info.name}",
                             customer=info.customer if role is Role.CUSTOMER_ADMIN else None)
        source = request.client.host if request.client else "?"
        retry = await bad_token(ctx.switch.registration.guard, source, now)
        if retry is not None:
            raise HTTPException(429, "too many failed attempts",
                                headers={"Retry-After": str(retry)})
    raise HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})


async def operator(who: Principal = Depends(principal)) -> Principal:
    if who.role is not Role.OPERATOR:
        raise not_found()
    return who


async def admin(who: Principal = Depends(principal)) -> Principal:
    if not who.is_admin:
        raise not_found()
    return who


class BodyLimit:
    """Refuse bodies over the limit (413) before the route reads them: FastAPI would
    buffer any size. The plan PUT may be larger than the other bodies."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = MAX_PLAN_BODY if path.endswith(f"{PREFIX}/plan") or "/announcements/" in path \
            or "/voicemail/greetings/" in path else MAX_BODY
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_json(send, 413, {"error": "request body too large"})
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # a chunked body: no Content-Length to refuse it by
                raise _TooLarge(413, "request body too large")
            return message

        await self.app(scope, limited, send)


class _TooLarge(StarletteHTTPException):
    """Raised while the route reads the body: FastAPI passes HTTP exceptions through its
    body parsing (anything else becomes a 400), and the handler answers 413."""


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    err = errors[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
    kind = str(err.get("type", "invalid"))
    reason = {"missing": "required", "extra_forbidden": "unknown field",
              "json_invalid": "body is not valid JSON"}.get(kind, kind.replace("_", " "))
    return f"{printable(where, 40)}: {reason}" if where else reason


def build_rest_app(ctx: ApiContext) -> FastAPI:
    from . import rest_calls, rest_directory, rest_media, rest_plan, rest_self, rest_tokens

    app = FastAPI(title="wte switch API", version="1",
                  description="Administration and self-service of the wte switch. Operators "
                  "and customer admins use API tokens (`wte tokens create`); users log in "
                  "with their SIP credentials (`POST /session`) for a session token.",
                  root_path=PREFIX, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", responses=COMMON_RESPONSES,
                  servers=[{"url": PREFIX}], root_path_in_servers=False)
    app.state.ctx = ctx

    @app.exception_handler(StarletteHTTPException)  # FastAPI's and Starlette's own (body)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail).lower()}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api %s %s failed", request.method, printable(request.url.path),
                  exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{PREFIX}/openapi.json",
                                   title="wte switch API",
                                   swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_STATIC}/favicon.png")

    for module in (rest_self, rest_tokens, rest_directory, rest_calls, rest_plan, rest_media):
        app.include_router(module.router)
    return app
