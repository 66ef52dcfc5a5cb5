"""Zero-touch provisioning over the switch's HTTP port (issue 19; the rules live in
devices/provisioning.py).

- `GET /provisioning/{file}` with the MAC in the file name (`001565aabbcc.cfg`,
  `spa001565aabbcc.xml`, `cfg000b82aabbcc.xml`...) and `GET /provisioning/activate` with the
  MAC in the User-Agent ("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"):
  * with `?code=<16 digits>` (a DECT base may repeat `code=` once per handset): the MAC
    claims the codes, the switch generates one credential per line (HA1s stored, password
    only in this response) and answers the rendered template of the device's model;
  * without a code, a MAC that already claimed codes gets its configuration again, without
    passwords (the phone keeps the ones it has: they were never stored);
  * an unknown MAC, an unknown code: 404, a used or expired code: 410, each logged and
    counted as a miss for the source; a source with too many misses gets 429 with
    Retry-After (provisioning servers are a classic credential leak: no guessing).
- `POST /api/v1/provisioning/codes` (operators: `Authorization: Bearer $WTE_ADMIN_TOKEN`)
  with `{"user": "501412", "days": 7}` creates a code and returns it once (201).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devices.dect import HandsetError, assign_lines
from devices.guard import AuthFailureGuard
from devices.logsafe import printable
from devices.provisioning import (
    ActivationCode,
    Catalog,
    ClaimError,
    Colleague,
    DeviceConfig,
    DeviceCredential,
    LineConfig,
    ModelTemplate,
    check_claim,
    code_hash,
    display_code,
    generate_credential,
    language_for_country,
    mac_from_path,
    mac_from_user_agent,
    new_code_record,
    normalize_code,
    read_catalog,
    read_template,
    render,
    template_values,
)
from dialplan.packs import FeatureName
from switch.storage.provisioning import SqlProvisioningRepository

from .jsonbody import BodyError, parse_json_object

if TYPE_CHECKING:
    from dialplan import User

    from .http import HttpApi

log = logging.getLogger("switch.provisioning")

FIRMWARE_URL_ENV = "WTE_FIRMWARE_URL"  # the operator's firmware location, if any
MAX_CODES_PER_REQUEST = 16
RELOAD_INTERVAL = 60.0  # seconds between reloads of the stored device credentials


def mount(app: web.Application, api: HttpApi) -> None:
    """Add the provisioning routes to the HTTP API's application."""
    routes = ProvisioningRoutes(api)
    app.router.add_get("/provisioning/activate", routes.activate)
    app.router.add_get("/provisioning/{name}", routes.config_file)
    app.router.add_post("/api/v1/provisioning/codes", routes.create_code)
    app.on_startup.append(routes.on_startup)


class _Miss(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ProvisioningRoutes:
    def __init__(self, api: HttpApi) -> None:
        self.api = api
        self.catalog: Catalog = read_catalog()
        # misses per source: ten in a minute block the source for five minutes, doubling
        # on each new block (devices.guard); no slow phase, a phone never misses twice
        self.guard = AuthFailureGuard(max_failures=10, window=60.0, block_seconds=300.0,
                                      slow_after=10)
        self._templates: dict[str, str] = {}
        self._reloader: asyncio.Task[None] | None = None

    def _repo(self) -> SqlProvisioningRepository | None:
        engine = getattr(self.api.switch, "engine", None)
        return SqlProvisioningRepository(engine) if engine is not None else None

    async def on_startup(self, app: web.Application) -> None:
        """The generated credentials of every provisioned device, into the account lookup;
        then again every RELOAD_INTERVAL, so that a device provisioned through another
        switch process sharing the database registers here too."""
        repo = self._repo()
        if repo is None or self.api.switch is None:
            return
        creds = await repo.credentials()
        self.api.switch.accounts.add_device_credentials(creds)
        log.info("loaded %d provisioned device credentials", len(creds))
        self._reloader = asyncio.create_task(self._reload_loop(repo))
        app.on_cleanup.append(self._stop_reloading)

    async def _reload_loop(self, repo: SqlProvisioningRepository) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            try:
                creds = await repo.credentials()
                if self.api.switch is not None:
                    self.api.switch.accounts.set_device_credentials(creds)
            except Exception:
                log.exception("reloading provisioned device credentials failed")

    async def _stop_reloading(self, app: web.Application) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader

    # -- the phone's requests --

    async def activate(self, request: web.Request) -> web.Response:
        return await self._serve(request, mac_from_user_agent(request.headers.get(
            "User-Agent", "")))

    async def config_file(self, request: web.Request) -> web.Response:
        return await self._serve(request, mac_from_path(request.match_info["name"]))

    async def _serve(self, request: web.Request, mac: str | None) -> web.Response:
        source = request.remote or "?"
        now = time.time()
        verdict = self.guard.check(source, now)
        if verdict.blocked:
            log.warning("provisioning refused (too many misses) source=%s", printable(source))
            return web.Response(status=429, text="too many failed attempts\n",
                                headers={"Retry-After": str(max(1, round(verdict.delay)))})
        user_agent = request.headers.get("User-Agent", "")
        try:
            return await self._configuration(request, mac, user_agent, now)
        except _Miss as miss:
            self.guard.record_failure(source, now)
            log.warning("provisioning miss status=%d reason=%s source=%s mac=%s path=%s "
                        "user_agent=%s", miss.status, miss.reason, printable(source),
                        mac or "-", printable(request.path, 80), printable(user_agent, 120))
            return web.Response(status=miss.status, text=miss.reason + "\n")

    async def _configuration(self, request: web.Request, mac: str | None, user_agent: str,
                             now: float) -> web.Response:
        repo = self._repo()
        if repo is None:
            return web.Response(status=503, text="starting\n")
        if mac is None:
            raise _Miss(404, "no MAC address in the request")
        template = self.catalog.choose(user_agent, mac)
        raw_codes = request.query.getall("code", [])
        known = await repo.credentials_for_mac(mac)
        if not raw_codes:
            if not known:
                raise _Miss(404, "unknown device")
            if template is None:
                raise _Miss(404, "no template for this model")
            return self._respond(template, mac, request, [(c, None) for c in known], now)
        if template is None:
            raise _Miss(404, "no template for this model")
        codes = [normalize_code(c) for c in raw_codes[:MAX_CODES_PER_REQUEST]]
        if any(c is None for c in codes):
            raise _Miss(404, "unknown activation code")
        hashes = list(dict.fromkeys(code_hash(c) for c in codes if c is not None))
        records: list[ActivationCode] = []
        for h in hashes:
            try:
                records.append(check_claim(await repo.get_code(h), now))
            except ClaimError as exc:
                raise _Miss(exc.status, exc.reason) from None
        try:  # a desk phone's account slots, a DECT base's handsets (devices.dect)
            slots, replacing = assign_lines([(c.aor, c.line) for c in known],
                                            [r.aor for r in records], template.lines)
        except HandsetError as exc:
            raise _Miss(exc.status, exc.reason) from None
        replaced = [c for c in known if c.line in replacing]
        kept = [c for c in known if c.line not in replacing]
        fresh: list[tuple[DeviceCredential, str | None]] = []
        for i, record in zip(slots, records, strict=True):
            user = self._user(record.aor)
            if user is None:
                raise _Miss(404, "the line of this activation code no longer exists")
            fresh.append(generate_credential(user.customer.realm, record.aor, mac, i, now))
        if not await repo.claim(hashes, mac, now, [c for c, _ in fresh], replaced):
            raise _Miss(410, "activation code already used")
        assert self.api.switch is not None
        self.api.switch.accounts.remove_device_credentials(replaced)
        self.api.switch.accounts.add_device_credentials(c for c, _ in fresh)
        for cred, _ in fresh:
            log.info("device provisioned mac=%s line=%d user=%s model=%s credential=%s", mac,
                     cred.line, cred.aor, template.name, cred.username)
        lines = sorted([(c, None) for c in kept] + fresh, key=lambda cp: cp[0].line)
        return self._respond(template, mac, request, lines, now)

    def _user(self, aor: str) -> User | None:
        sw = self.api.switch
        return sw.accounts.user_for_aor(aor) if sw is not None else None

    def _respond(self, template: ModelTemplate, mac: str, request: web.Request,
                 lines: list[tuple[DeviceCredential, str | None]], now: float) -> web.Response:
        sw = self.api.switch
        assert sw is not None
        users = [(cred, password, self._user(cred.aor)) for cred, password in lines]
        served = [(c, p, u) for c, p, u in users if u is not None]
        if not served:
            raise _Miss(404, "the lines of this device no longer exist")
        first = served[0][2]
        own = {u.full_number for _, _, u in served}
        colleagues = tuple(Colleague(u.sip.username, u.name) for u in first.site.users
                           if u.full_number not in own)
        voicemail = next((code for code, name in first.customer.feature_codes.items()
                          if name is FeatureName.VOICEMAIL), None)
        host, port = sw.sip_address[0], sw.sip_address[1]
        if host in ("0.0.0.0", "::", ""):
            host = request.url.host or host  # the address the phone reached us on
        config = DeviceConfig(
            mac=mac, server=host, port=port, transport="UDP",
            domain=first.customer.sip_domain, timezone=first.site.timezone.key,
            language=language_for_country(first.customer.country),
            lines=tuple(LineConfig(c.line, u.sip.username, u.name, c.username, p)
                        for c, p, u in served),
            colleagues=colleagues, voicemail_code=voicemail,
            firmware_url=os.environ.get(FIRMWARE_URL_ENV) or None)
        text = self._templates.get(template.file)
        if text is None:
            text = self._templates[template.file] = read_template(template.file)
        body = render(text, template_values(config, now))
        return web.Response(text=body, content_type=template.content_type,
                            headers={"Cache-Control": "no-store"})

    # -- the operator's request --

    async def create_code(self, request: web.Request) -> web.Response:
        if not self.api._admin(request):
            return web.json_response({"error": "forbidden"}, status=403)
        repo = self._repo()
        sw = self.api.switch
        if repo is None or sw is None:
            return web.json_response({"error": "starting"}, status=503)
        try:
            data: dict[str, Any] = parse_json_object(await request.read())
        except BodyError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        number, days = data.get("user"), data.get("days", 7)
        if not isinstance(number, str) or not isinstance(days, int) or not 0 < days <= 90:
            return web.json_response({"error": "need user (string) and days (1 to 90)"},
                                     status=400)
        user = sw.plan_holder.plan.user_by_full_number(number)
        if user is None:
            return web.json_response({"error": "no such user or workspace"}, status=404)
        aor = f"{user.customer.id}:{user.full_number}"
        code, record = new_code_record(user.customer.id, user.full_number, aor, time.time(),
                                       days * 86_400.0)
        await repo.add_code(record)
        log.info("activation code created user=%s expires_at=%.0f", aor, record.expires_at)
        return web.json_response({"code": code, "display": display_code(code),
                                  "user": user.full_number, "expires_at": record.expires_at},
                                 status=201)
