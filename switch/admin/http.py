"""The switch's HTTP API: health, metrics, and the emergency location update URL.

Least privilege: each route has the smallest audience it needs.
- `GET /healthz`: anyone (load balancers): 200 with the checks (database, disk, transports,
  plan, registrations), or 503 with the same JSON and `failed` naming what failed.
- `GET /metrics` (Prometheus text) and `GET /metrics.json`: operators holding the admin token
  (env `WTE_ADMIN_TOKEN`, sent as `Authorization: Bearer ...`); without a configured token
  the routes are closed.
- `GET|PUT /api/v1/me/emergency-location`: a user, with their own SIP credentials (HTTP
  Basic, checked against the stored HA1 digests; the password is never stored), may read and
  set only their own self-declared location (annex 16.1, "emergency location update URL").
  Failures count in the same guard as SIP digest failures, so it is no password oracle:
  answered late once slowed, 429 with Retry-After once blocked.

Bad input gets a short plain JSON message (400, 413), never a parser's or pydantic's text;
anything unexpected a JSON 500, logged here. Peer text is escaped before it is logged.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from devices.accounts import Account
from devices.logsafe import printable
from emergency.locations import DeclaredLocation, LocationTextError, check_text
from switch.webrtc.http import mount as mount_webrtc

from .auth import LoginRefused, check_password
from .health import CheckResult, HealthChecks, HealthReport, disk_free_of, engine_probe
from .jsonbody import BodyError, parse_json_object
from .provisioning import mount as mount_provisioning
from .voicemail_api import mount as mount_voicemail

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.http")

ADMIN_TOKEN_ENV = "WTE_ADMIN_TOKEN"
MAX_BODY = 16 * 1024
# issue 14: per call queue (labels customer and queue), from QueueService.figures()
QUEUE_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("waiting", "gauge", "Callers waiting in the queue."),
    ("longest_wait", "gauge", "Seconds the oldest waiting caller has waited."),
    ("agents_logged_in", "gauge", "Agents logged in to the queue."),
    ("agents_free", "gauge", "Agents free to take a queue call."),
    ("answered", "counter", "Queue calls an agent answered."),
    ("abandoned", "counter", "Queue callers who hung up while waiting."),
    ("overflowed", "counter", "Queue callers sent to the overflow target."),
    ("called_back", "counter", "Queue callers called back (their agent answered)."),
    ("service_level", "gauge", "Share of answered queue calls answered within 20 s."),
)


class LocationBody(BaseModel):
    """The declaration form; every field through emergency.locations.check_text."""

    model_config = ConfigDict(extra="forbid", strict=True)
    street: str
    number: str
    postal_code: str
    city: str
    country: str = "FR"
    extra: str = ""

    @field_validator("street", "number", "postal_code", "city", "country", "extra")
    @classmethod
    def _text(cls, value: str, info: Any) -> str:
        return check_text(info.field_name, value, required=info.field_name != "extra")


def _plain_validation_error(exc: ValidationError) -> str:
    """A short message for the user from pydantic's first error: the field and what is
    wrong, never pydantic's own text (which echoes the input and links its docs)."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "body"
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, LocationTextError):
        return str(cause)
    reason = {"missing": "required", "extra_forbidden": "unknown field",
              "string_type": "must be a string"}.get(str(err.get("type")), "invalid")
    return f"{printable(field, 40)}: {reason}"


def _basic(request: web.Request) -> tuple[str, str] | None:
    value = request.headers.get("Authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if user and password else None


@web.middleware
async def _plain_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unexpected failures answer a short JSON 500 and are logged here, with the route;
    the client never sees a traceback or an exception's text."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            kept = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
            return web.json_response({"error": exc.reason.lower()}, status=exc.status,
                                     headers=kept)
        raise
    except Exception:
        log.exception("http %s %s failed", request.method, printable(request.path))
        return web.json_response({"error": "internal error"}, status=500)


class HttpApi:
    """`health` (the /healthz checks) and `data_dir` may be given; by default they come
    from the switch at start (its data directory, its database URL)."""

    def __init__(self, host: str, port: int, *, health: HealthChecks | None = None,
                 data_dir: str | Path | None = None) -> None:
        self.host = host
        self.port = port
        self.switch: Switch | None = None
        self.health = health
        self.data_dir = data_dir
        self._runner: web.AppRunner | None = None
        self._health_engine: Any = None
        self.rest: Any = None  # the REST API's context (switch.admin.rest.ApiContext)

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_plain_errors])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_text)
        app.router.add_get("/metrics.json", self.metrics)
        app.router.add_get("/api/v1/me/emergency-location", self.get_location)
        app.router.add_put("/api/v1/me/emergency-location", self.put_location)
        mount_provisioning(app, self)  # /provisioning/... and /api/v1/provisioning/codes
        mount_voicemail(app, self)  # /voicemail/v1/... (issue 13)
        mount_webrtc(app, self)  # /api/v1/webrtc/credentials, /softphone (issue 23)
        return app

    def _mount_rest(self, app: web.Application, switch: Switch) -> None:
        """Issue 18: the REST API under /api/v1, its docs and the portal (a whole switch:
        they read its plan, services and database)."""
        from .rest_mount import mount as mount_rest

        data_dir = self.data_dir if self.data_dir is not None else switch.options.data_dir
        self.rest = mount_rest(app, switch, Path(data_dir))

    async def start(self, switch: Switch) -> None:
        self.switch = switch
        if self.health is None:
            self.health = self._default_health(switch)
        app = self.build_app()
        self._mount_rest(app, switch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("listening transport=HTTP address=%s:%d", self.host, self.port)

    def _default_health(self, switch: Switch) -> HealthChecks:
        from switch.storage.cli import database_url
        from switch.storage.engine import create_engine

        data_dir = str(self.data_dir if self.data_dir is not None else switch.options.data_dir)
        self._health_engine = create_engine(database_url(data_dir))
        return HealthChecks(db_probe=engine_probe(self._health_engine),
                            disk_free=disk_free_of(data_dir))

    async def stop(self, switch: Switch) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._health_engine is not None:
            await self._health_engine.dispose()

    # -- routes --

    async def healthz(self, request: web.Request) -> web.Response:
        """200 with the checks, or 503 naming what failed (database, disk)."""
        if self.health is None:
            return web.json_response({"status": "ok", "failed": [], "checks": {}})
        report = await self.health.report(time.monotonic())
        if self.switch is not None and hasattr(self.switch, "listening"):
            report = HealthReport({**report.checks, **switch_checks(self.switch)})
        return web.json_response(report.as_json(), status=report.status)

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
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        family("wte_sip_messages_total", "counter", "SIP messages received and sent.",
               [('{direction="in"}', sip["messages_in"]),
                ('{direction="out"}', sip["messages_out"])])
        family("wte_sip_dropped_total", "counter",
               "Datagrams and stream messages dropped unparsed at the transport edge.",
               [("", sip["dropped"])])
        family("wte_sip_handler_errors_total", "counter",
               "Requests whose handler raised (answered 500).", [("", sip["handler_errors"])])
        overload = sip.get("overload", {})  # issue 21: switch/transport/udp.py
        family("wte_sip_overload_total", "counter",
               "UDP requests shed while the switch was saturated: answered 503 with "
               "Retry-After, or dropped unread after waiting past overload_drop_delay.",
               [('{action="503"}', overload.get("shed_503", 0)),
                ('{action="dropped"}', overload.get("dropped_late", 0))])
        family("wte_sip_requests_total", "counter", "SIP requests received, by method.",
               [(f'{{method="{m}"}}', n) for m, n in sip["requests"].items()])
        family("wte_sip_responses_total", "counter", "SIP responses sent, by status.",
               [(f'{{status="{c}"}}', n) for c, n in sip["responses_sent"].items()])
        family("wte_transactions", "gauge", "SIP transactions in progress.",
               [("", data["transactions"])])
        family("wte_bindings", "gauge", "Registered contacts (bindings).",
               [("", data.get("bindings", 0))])
        family("wte_calls", "gauge", "Calls in progress.", [("", data.get("calls", 0))])
        family("wte_call_limit_refusals_total", "counter",
               "Calls refused by the per-account and per-site limits (toll fraud brake).",
               [("", data.get("call_limit_refusals", 0))])
        streams = data.get("streams", {})
        family("wte_stream_connections", "gauge", "Open TCP, TLS and WebSocket connections.",
               [("", streams.get("stream_connections", 0))])
        family("wte_stream_refused_total", "counter",
               "Inbound connections reset over a cap.",
               [('{cap="per_source"}', streams.get("stream_refused_per_source", 0)),
                ('{cap="overall"}', streams.get("stream_refused_overall", 0))])
        family("wte_stream_closed_total", "counter",
               "Connections closed by a deadline or for a failed handshake or framing.",
               [(f'{{reason="{k.removeprefix("stream_")}"}}', v) for k, v in streams.items()
                if k.startswith(("stream_expired_", "stream_handshake", "stream_framing"))])
        family("wte_auth_failures_total", "counter",
               "Requests with wrong credentials (SIP digest and HTTP Basic).",
               [("", data.get("auth_failures", 0))])
        family("wte_records_queue_depth", "gauge",
               "Call record events waiting for the database writer.",
               [("", data.get("records_queue", 0))])
        family("wte_trunk_call_attempts_total", "counter", "Call attempts routed to a trunk.",
               [(f'{{trunk="{t}"}}', n) for t, n in sorted(data.get("trunks", {}).items())])
        media = data.get("media", {})
        family("wte_rtp_port_pairs_in_use", "gauge",
               "RTP/RTCP port pairs held by relays and endpoints (of wte_rtp_port_pairs).",
               [("", media.get("rtp_port_pairs_in_use", 0))])
        family("wte_rtp_port_pairs", "gauge", "RTP/RTCP port pairs in the configured range.",
               [("", media.get("rtp_port_pairs", 0))])
        family("wte_rtp_dropped_total", "counter",
               "RTP/RTCP packets the relay dropped: from a source that is not the call's "
               "phone, or malformed.",
               [('{reason="foreign"}', media.get("rtp_foreign_dropped", 0)),
                ('{reason="malformed"}', media.get("rtp_malformed_dropped", 0))])
        webrtc = data.get("webrtc", {})  # issue 23
        family("wte_webrtc_legs", "gauge", "Browser (WebRTC) call legs the gateway holds.",
               [("", webrtc.get("legs", 0))])
        family("wte_webrtc_legs_total", "counter",
               "WebRTC legs opened, refused over webrtc.max_legs, or failed in aiortc.",
               [('{outcome="opened"}', webrtc.get("legs_opened", 0)),
                ('{outcome="refused"}', webrtc.get("legs_refused", 0)),
                ('{outcome="failed"}', webrtc.get("gateway_errors", 0))])
        queues = data.get("queues", [])

        def per_queue(key: str) -> list[tuple[str, Any]]:
            return [(f'{{customer="{q["customer"]}",queue="{q["queue"]}"}}', q[key])
                    for q in queues]

        for key, kind, help_text in QUEUE_FAMILIES:
            family(f"wte_queue_{key}", kind, help_text, per_queue(key))
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
            body["call_limit_refusals"] = sw.calls.admission.limiter.refused
        body["trunks"] = dict(sw.calls.trunk_attempts)
        guard = sw.registration.guard
        body["auth_failures"] = guard.failures if guard is not None else 0
        body["records_queue"] = sw.records.queue_depth()
        body["streams"] = sw.streams.counters()
        body["media"] = sw.media.counters()
        if sw.webrtc is not None:  # issue 23
            body["webrtc"] = {"legs": len(sw.webrtc.edge.legs), **sw.webrtc.edge.counters}
        queues = getattr(sw, "queues", None)  # issue 14
        body["queues"] = queues.figures() if queues is not None else []
        return body

    def _clock(self) -> float:
        sw = self.switch
        return sw.registration.clock() if sw is not None else time.time()

    async def _authenticate(self, request: web.Request) -> Account | web.Response:
        """HTTP Basic against the stored HA1 (RFC 7617 over loopback or a TLS proxy),
        through the same failure guard as SIP digest (devices.guard): failures are
        counted per source and per account, answered late once SLOWED, and a BLOCKED
        source or account gets 429 with Retry-After without its password being looked at
        (except for an account registered from that very address: a shared NAT)."""
        sw = self.switch
        assert sw is not None
        source = request.remote or "?"
        creds = _basic(request)
        if creds is None:
            return self._challenge()
        user, password = creds
        realm = sw.accounts.realm_for_host(request.host.split(":")[0])
        guard = sw.registration.guard
        if guard is None:  # the registration service has not started yet
            return web.json_response({"error": "starting"}, status=503)
        try:  # the same check as the REST API's login (switch.admin.auth)
            return await check_password(guard, sw.accounts.find, source, user, realm,
                                        password, self._clock())
        except LoginRefused as exc:
            if exc.status == 429:
                return web.json_response({"error": "too many failed attempts"}, status=429,
                                         headers={"Retry-After": str(exc.retry_after or 1)})
            return self._challenge()

    @staticmethod
    def _challenge() -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401,
                                 headers={"WWW-Authenticate": 'Basic realm="wte"'})

    async def get_location(self, request: web.Request) -> web.Response:
        account = await self._authenticate(request)
        if isinstance(account, web.Response):
            return account
        assert self.switch is not None
        loc = self.switch.emergency.locations.get(account.aor)
        if loc is None:
            return web.json_response({"error": "no location declared"}, status=404)
        return web.json_response(_as_json(loc))

    async def put_location(self, request: web.Request) -> web.Response:
        account = await self._authenticate(request)
        if isinstance(account, web.Response):
            return account
        try:
            data = parse_json_object(await request.read())
            body = LocationBody.model_validate(data)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "request body too large"}, status=413)
        except BodyError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except ValidationError as exc:
            return web.json_response(
                {"error": f"invalid location: {_plain_validation_error(exc)}"}, status=400)
        assert self.switch is not None
        loc = DeclaredLocation(account.aor, body.street, body.number, body.postal_code,
                               body.city, body.country.upper(), body.extra, time.time())
        await self.switch.emergency.declare(loc)
        log.info("emergency location declared user=%s location=%s",
                 printable(account.username), printable(loc))
        return web.json_response(_as_json(loc))


def _as_json(loc: DeclaredLocation) -> dict[str, Any]:
    return {"street": loc.street, "number": loc.number, "postal_code": loc.postal_code,
            "city": loc.city, "country": loc.country, "extra": loc.extra,
            "updated_at": loc.updated_at}



def switch_checks(sw: Switch) -> dict[str, CheckResult]:
    """What only the running switch knows: it listens for SIP (UDP and TCP at least), it
    serves a dialplan (and which generation), it can accept registrations (its digest and
    failure guard are up). Any of them failing answers 503: a node that cannot register
    phones must leave the load balancer's pool."""
    listening = sorted(f"{t} {h}:{p}" for t, h, p in sw.listening)
    kinds = {t for t, _, _ in sw.listening}
    holder = sw.plan_holder
    ready = sw.registration.digest is not None and sw.registration.guard is not None
    return {
        "transports": CheckResult({"UDP", "TCP"} <= kinds, {"listening": listening}),
        "plan": CheckResult(bool(holder.plan.customers),
                            {"generation": holder.generation,
                             "customers": len(holder.plan.customers)}),
        "registrations": CheckResult(ready, {"accepting": ready}),
    }
