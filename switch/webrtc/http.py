"""HTTP routes of the browser softphone (issue 23), mounted on the switch's HTTP API.

- `POST /api/v1/webrtc/credentials`: an authenticated user gets a short-lived SIP password
  for its own user name (`credentials.EphemeralCredentials`), the realm, its expiry and the
  WebSocket addresses to register on. Never the SIP password; `Cache-Control: no-store`.
- `GET /softphone` (and its two files under `/softphone/`): the page, static HTML and
  JavaScript with no build step and nothing fetched from the internet.

Who is "authenticated": `authenticated_user` below, the one place to change. A user's
portal session (`Authorization: Bearer <session token>` from `POST /api/v1/session`,
issue 18, `switch.admin.auth.verify_session`) comes first; HTTP Basic with the user's SIP
credentials, through the same failure guard as SIP digest (`HttpApi._authenticate`, as
`/api/v1/me/emergency-location`), stays as the fallback for scripts. Operator and
customer-admin tokens get nothing here: a browser softphone is a user's own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from devices.accounts import Account
from devices.logsafe import printable
from switch.admin.auth import Role, verify_session

if TYPE_CHECKING:
    from switch.admin.http import HttpApi

log = logging.getLogger("switch.webrtc")

STATIC = Path(__file__).resolve().parent.parent / "admin" / "static" / "softphone"
_FILES = {"softphone.js": "text/javascript", "softphone.css": "text/css"}
# the page needs nothing from elsewhere: scripts, media and WebSockets to this switch only
_CSP = ("default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; "
        "img-src 'self' data:; style-src 'self'; script-src 'self'")


async def authenticated_user(api: HttpApi, request: web.Request) -> Account | web.Response:
    """The user an HTTP request acts for, or the response refusing it (401, 429, 503).

    A portal session token first (issue 18), then HTTP Basic."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        principal = verify_session(header[7:].strip())
        sw = api.switch
        if principal is not None and principal.role is Role.USER and sw is not None:
            realm = sw.accounts.realm_for_host(request.host.split(":")[0])
            account = sw.accounts.find(principal.name, realm)
            if account is not None:
                return account
        return web.json_response({"error": "unauthorized"}, status=401)
    return await api._authenticate(request)


def mount(app: web.Application, api: HttpApi) -> None:
    routes = SoftphoneRoutes(api)
    app.router.add_post("/api/v1/webrtc/credentials", routes.credentials)
    app.router.add_get("/softphone", routes.page)
    app.router.add_get("/softphone/{name}", routes.asset)


class SoftphoneRoutes:
    def __init__(self, api: HttpApi) -> None:
        self.api = api

    async def credentials(self, request: web.Request) -> web.Response:
        account = await authenticated_user(self.api, request)
        if isinstance(account, web.Response):
            return account
        sw = self.api.switch
        if sw is None or sw.webrtc is None:
            return web.json_response({"error": "webrtc unavailable"}, status=503)
        issued = sw.webrtc.credentials.issue(account.username, account.realm,
                                             self.api._clock())
        host = request.host.rsplit(":", 1)[0] if request.host else sw.addresses.host
        a = sw.addresses
        log.info("webrtc credentials issued user=%s expires=%d", printable(account.username),
                 issued.expires)
        public = sw.settings.webrtc.public_ws_url  # behind the portal's TLS proxy
        return web.json_response(
            {"username": issued.username, "password": issued.password, "realm": issued.realm,
             "expires": issued.expires, "domain": host,
             "ws_url": public or f"ws://{host}:{a.ws_port}/",
             "wss_url": public or f"wss://{host}:{a.wss_port}/"},
            headers={"Cache-Control": "no-store"})

    async def page(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html", "text/html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _FILES:  # a fixed list: no path from the request reaches the disk
            raise web.HTTPNotFound()
        return self._file(name, _FILES[name])

    @staticmethod
    def _file(name: str, content_type: str) -> web.Response:
        body = (STATIC / name).read_bytes()
        return web.Response(body=body, content_type=content_type, charset="utf-8",
                            headers={"Content-Security-Policy": _CSP,
                                     "Cache-Control": "no-cache"})
