"""The switch's HTTP API: health, metrics, and the emergency location update URL.

Least privilege: each route has the smallest audience it needs.
- `GET /healthz`: anyone (load balancers).
- `GET /metrics` (Prometheus text) and `GET /metrics.json`: operators holding the admin token
  (env `WTE_ADMIN_TOKEN`, sent as `Authorization: Bearer ...`); without a configured token
  the routes are closed.
- `GET|PUT /api/v1/me/emergency-location`: a user, with their own SIP credentials (HTTP
  Basic, checked against the stored HA1 digests; the password is never stored), may read and
  set only their own self-declared location (annex 16.1, "emergency location update URL").
  Failures count in the same guard as SIP digest failures, so it is no password oracle.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.accounts import Account, ha1
from emergency.locations import DeclaredLocation

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.http")

ADMIN_TOKEN_ENV = "WTE_ADMIN_TOKEN"


class LocationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    street: str = Field(min_length=1, max_length=200)
    number: str = Field(min_length=1, max_length=32)
    postal_code: str = Field(min_length=1, max_length=16)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field("FR", min_length=2, max_length=2)
    extra: str = Field("", max_length=200)


def _basic(request: web.Request) -> tuple[str, str] | None:
    value = request.headers.get("Authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if user and password else None


class HttpApi:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.switch: Switch | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, switch: Switch) -> None:
        self.switch = switch
        app = web.Application(client_max_size=16 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_text)
        app.router.add_get("/metrics.json", self.metrics)
        app.router.add_get("/api/v1/me/emergency-location", self.get_location)
        app.router.add_put("/api/v1/me/emergency-location", self.put_location)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("listening transport=HTTP address=%s:%d", self.host, self.port)

    async def stop(self, switch: Switch) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- routes --

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @staticmethod
    def _admin(request: web.Request) -> bool:
        token = os.environ.get(ADMIN_TOKEN_ENV, "")
        given = request.headers.get("Authorization", "")
        return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def metrics_text(self, request: web.Request) -> web.Response:
        """The same figures in the Prometheus text exposition format."""
        if not self._admin(request):
            return web.Response(status=403, text="forbidden\n")
        data = self._figures()
        sip = data["sip"]
        lines = [
            "# TYPE wte_sip_messages_total counter",
            f'wte_sip_messages_total{{direction="in"}} {sip["messages_in"]}',
            f'wte_sip_messages_total{{direction="out"}} {sip["messages_out"]}',
            "# TYPE wte_sip_dropped_total counter",
            f"wte_sip_dropped_total {sip['dropped']}",
            "# TYPE wte_sip_handler_errors_total counter",
            f"wte_sip_handler_errors_total {sip['handler_errors']}",
            "# TYPE wte_sip_requests_total counter",
            *(f'wte_sip_requests_total{{method="{m}"}} {n}' for m, n in sip["requests"].items()),
            "# TYPE wte_sip_responses_total counter",
            *(f'wte_sip_responses_total{{status="{c}"}} {n}'
              for c, n in sip["responses_sent"].items()),
            "# TYPE wte_transactions gauge",
            f"wte_transactions {data['transactions']}",
            "# TYPE wte_bindings gauge",
            f"wte_bindings {data.get('bindings', 0)}",
            "# TYPE wte_calls gauge",
            f"wte_calls {data.get('calls', 0)}",
        ]
        return web.Response(text="\n".join(lines) + "\n",
                            content_type="text/plain", charset="utf-8")

    async def metrics(self, request: web.Request) -> web.Response:
        if not self._admin(request):
            return web.json_response({"error": "forbidden"}, status=403)
        return web.json_response(self._figures())

    def _figures(self) -> dict[str, Any]:
        sw = self.switch
        assert sw is not None
        body: dict[str, Any] = {"sip": sw.runtime.counters.snapshot(),
                                "transactions": len(sw.runtime.txn)}
        if sw.registration is not None:
            body["bindings"] = len(sw.registration.location)
        if sw.calls is not None:
            body["calls"] = len(sw.calls)
        return body

    def _authenticate(self, request: web.Request) -> Account | None:
        """HTTP Basic against the stored HA1 (RFC 7617 over loopback or a TLS proxy)."""
        sw = self.switch
        assert sw is not None
        source = request.remote or "?"
        now = time.time()
        guard = sw.registration.guard
        if guard.check(source, now).blocked:
            return None
        creds = _basic(request)
        if creds is None:
            return None
        user, password = creds
        realm = sw.accounts.realm_for_host(request.host.split(":")[0])
        account = sw.accounts.find(user, realm)
        # the same work for unknown users as for known ones: no user enumeration
        expected = account.ha1_md5 if account else "0" * 32
        if not hmac.compare_digest(ha1(user, realm, password, "MD5"), expected) or account is None:
            guard.record_failure(source, now)
            log.info("http authentication failed source=%s user=%s", source, user)
            return None
        guard.record_success(source, now)
        return account

    @staticmethod
    def _challenge() -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401,
                                 headers={"WWW-Authenticate": 'Basic realm="wte"'})

    async def get_location(self, request: web.Request) -> web.Response:
        account = self._authenticate(request)
        if account is None:
            return self._challenge()
        assert self.switch is not None
        loc = self.switch.calls.emergency.locations.get(account.aor)
        if loc is None:
            return web.json_response({"error": "no location declared"}, status=404)
        return web.json_response(_as_json(loc))

    async def put_location(self, request: web.Request) -> web.Response:
        account = self._authenticate(request)
        if account is None:
            return self._challenge()
        try:
            body = LocationBody.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return web.json_response({"error": "invalid location", "detail": str(exc)[:500]},
                                     status=400)
        assert self.switch is not None
        loc = DeclaredLocation(account.aor, body.street, body.number, body.postal_code,
                               body.city, body.country.upper(), body.extra, time.time())
        await self.switch.calls.emergency.declare(loc)
        log.info("emergency location declared user=%s location=%s", account.username, loc)
        return web.json_response(_as_json(loc))


def _as_json(loc: DeclaredLocation) -> dict[str, Any]:
    return {"street": loc.street, "number": loc.number, "postal_code": loc.postal_code,
            "city": loc.city, "country": loc.country, "extra": loc.extra,
            "updated_at": loc.updated_at}
