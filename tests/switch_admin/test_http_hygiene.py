"""The HTTP API's edge (issue 20 items 5, 6, 8): the emergency location refuses control
characters; bodies too deep or too large get 400/413 with a plain message; replies never
echo validation internals; HTTP Basic guesses go through the failure guard (back-off, 429
with Retry-After, a registered phone's NAT address still admitted); peer text is escaped in
logs; /healthz answers 503 naming the failed check. Driven through aiohttp's test client
with a stand-in for the switch."""

from __future__ import annotations

import base64
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devices.accounts import Account, ha1
from devices.guard import AuthFailureGuard
from emergency.locations import DeclaredLocation, LocationTextError, check_text
from emergency.pidf import CivicLocation, build_pidf_lo, parse_civic
from switch.admin.health import HealthChecks
from switch.admin.http import HttpApi
from switch.admin.jsonbody import BodyError, nesting_depth, parse_json_object

REALM = "acme.wte.example"
URL = "/api/v1/me/emergency-location"
GOOD = {"street": "Quai de la Fosse", "number": "3", "postal_code": "44000", "city": "Nantes"}
NOW = 1_800_000_000.0


class Accounts:
    def __init__(self) -> None:
        self.by_user = {u: Account(u, REALM, ha1(u, REALM, f"demo-{u}", "MD5"), "", f"acme:{u}")
                        for u in ("501410", "501411", "502411")}

    def realm_for_host(self, host: str) -> str:
        return REALM

    def find(self, username: str, realm: str) -> Account | None:
        return self.by_user.get(username) if realm == REALM else None


class Emergency:
    def __init__(self) -> None:
        self.saved: dict[str, DeclaredLocation] = {}
        self.locations = SimpleNamespace(get=self.saved.get)

    async def declare(self, loc: DeclaredLocation) -> None:
        self.saved[loc.aor] = loc


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(*, guard: AuthFailureGuard | None = None,
                   health: HealthChecks | None = None) -> TestClient[Any, Any]:
        api = HttpApi("127.0.0.1", 0, health=health)
        api.switch = SimpleNamespace(  # type: ignore[assignment]
            accounts=Accounts(),
            registration=SimpleNamespace(guard=guard if guard is not None else AuthFailureGuard(),
                                         clock=lambda: NOW),
            emergency=Emergency(),
        )
        client: TestClient[Any, Any] = TestClient(TestServer(api.build_app()))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


# -- item 6: input hygiene --

@pytest.mark.parametrize("field,value", [
    ("street", "Quai\x00 de la Fosse"), ("city", "Nantes\nBLOCKED"), ("extra", "floor\x1b[2J"),
    ("number", "3\u2028"), ("postal_code", "44000\r"), ("country", "F\x00"),
])
async def test_control_characters_are_refused(make_client: MakeClient, field: str,
                                              value: str) -> None:
    client = await make_client()
    body = {**GOOD, field: value}
    resp = await client.put(URL, json=body, headers=basic("502411", "demo-502411"))
    assert resp.status == 400
    data = await resp.json()
    assert data == {"error": f"invalid location: {field}: control or invalid characters are "
                             "not allowed"}


@pytest.mark.parametrize("body,message", [
    ({**GOOD, "street": "x" * 201}, "invalid location: street: longer than 200 characters"),
    ({k: v for k, v in GOOD.items() if k != "city"}, "invalid location: city: required"),
    ({**GOOD, "city": "   "}, "invalid location: city: required"),
    ({**GOOD, "city": 12}, "invalid location: city: must be a string"),
    ({**GOOD, "admin": True}, "invalid location: admin: unknown field"),
    ({**GOOD, "country": "France"}, "invalid location: country: longer than 2 characters"),
    ({**GOOD, "country": "F1"}, "invalid location: country: two letters (ISO 3166-1 alpha-2)"),
])
async def test_error_replies_are_plain(make_client: MakeClient, body: dict[str, Any],
                                       message: str) -> None:
    client = await make_client()
    resp = await client.put(URL, json=body, headers=basic("502411", "demo-502411"))
    assert resp.status == 400
    text = await resp.text()
    assert json.loads(text) == {"error": message}
    for internal in ("pydantic", "errors.pydantic.dev", "input_value", "type=", "Value error"):
        assert internal not in text


async def test_deep_large_and_malformed_bodies(make_client: MakeClient) -> None:
    client = await make_client()
    auth = {**basic("502411", "demo-502411"), "Content-Type": "application/json"}
    deep = '{"street": ' + "[" * 5000 + "]" * 5000 + "}"
    resp = await client.put(URL, data=deep, headers=auth)
    assert resp.status == 400 and await resp.json() == {"error": "JSON nested too deeply"}
    resp = await client.put(URL, data="[" * 20_000, headers=auth)
    assert resp.status == 413 and await resp.json() == {"error": "request body too large"}
    for raw, message in (("{", "body is not valid JSON"), ("[1]", "body must be a JSON object"),
                         (b"\xff\xfe", "body is not UTF-8")):
        resp = await client.put(URL, data=raw, headers=auth)
        assert resp.status == 400 and await resp.json() == {"error": message}
    # a valid declaration still works, and unknown routes answer JSON too
    resp = await client.put(URL, json=GOOD, headers=basic("502411", "demo-502411"))
    assert resp.status == 200 and (await resp.json())["city"] == "Nantes"
    resp = await client.get("/nope")
    assert resp.status == 404 and await resp.json() == {"error": "not found"}


async def test_basic_user_name_cannot_forge_log_lines(make_client: MakeClient,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client()
    forged = "x\nWARNING auth guard source=192.0.2.66: SLOWED -> BLOCKED"
    with caplog.at_level(logging.INFO):
        resp = await client.get(URL, headers=basic(forged, "pw"))
    assert resp.status == 401
    lines = [r.getMessage() for r in caplog.records]
    assert any("user=x\\nWARNING" in m for m in lines), lines
    assert all("\n" not in m for m in lines)


def test_pidf_is_valid_xml_whatever_the_text() -> None:
    loc = CivicLocation(country="FR", city="Nan\x00tes", street="Quai\x0b de\nla Fosse\ufffe",
                        number="3\x1b", postal_code="44000", extra="<b>&amp;", name="A\x7fB")
    body = build_pidf_lo("sip:+33223280411@acme\x01", loc, "dev\x02-1")
    root = ET.fromstring(body)  # would raise on a NUL or other invalid character
    civic = parse_civic(body)
    assert civic["A3"] == "Nantes" and civic["RD"] == "Quai de la Fosse"
    assert civic["HNO"] == "3" and civic["LOC"] == "<b>&amp;" and civic["NAM"] == "A B"
    assert root.get("entity") == "sip:+33223280411@acme"


def test_check_text() -> None:
    assert check_text("city", "  Nantes ") == "Nantes"
    assert check_text("extra", "", required=False) == ""
    assert check_text("street", "Rue de l'Église") == "Rue de l'Église"
    for bad in ("a\x00", "a\tb", "\u202eevil", "a\ud800", "a\ufdd0"):
        with pytest.raises(LocationTextError):
            check_text("street", bad)


def test_json_depth_scan() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[[[["}]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    with pytest.raises(BodyError) as err:
        parse_json_object(b'{"a":' + b"[" * 9 + b"]" * 9 + b"}")
    assert err.value.status == 400
    with pytest.raises(BodyError) as err:
        parse_json_object(b"{}", max_bytes=1)
    assert err.value.status == 413


# -- item 5: HTTP Basic through the same guard --

async def test_basic_guesses_back_off_then_429(make_client: MakeClient) -> None:
    bound = {("502411@" + REALM, "127.0.0.1")}
    guard = AuthFailureGuard(max_failures=4, slow_after=2, base_delay=0.01, max_delay=0.02,
                             has_binding=lambda account, source: (account, source) in bound)
    client = await make_client(guard=guard)
    statuses = []
    for i in range(5):
        resp = await client.get(URL, headers=basic("501411", f"guess{i}"))
        statuses.append((resp.status, resp.headers.get("Retry-After")))
    assert statuses[:4] == [(401, None)] * 4
    assert statuses[4][0] == 429 and int(statuses[4][1] or 0) > 0
    assert await (await client.get(URL, headers=basic("501411", f"guess{9}"))).json() \
        == {"error": "too many failed attempts"}
    # the right password of an account not registered from this address: still 429
    resp = await client.get(URL, headers=basic("501410", "demo-501410"))
    assert resp.status == 429
    # a user whose phone is registered from this (shared) address gets in
    resp = await client.put(URL, json=GOOD, headers=basic("502411", "demo-502411"))
    assert resp.status == 200


async def test_basic_success_does_not_reset_the_count(make_client: MakeClient) -> None:
    guard = AuthFailureGuard(max_failures=4, slow_after=3, base_delay=0.01, max_delay=0.02)
    client = await make_client(guard=guard)
    statuses = []
    for i in range(6):
        statuses.append((await client.get(URL, headers=basic("501410", f"guess{i}"))).status)
        statuses.append((await client.get(URL, headers=basic("501411", "demo-501411"))).status)
    assert 429 in statuses


# -- item 8: /healthz --

async def test_healthz_ok_and_failures(make_client: MakeClient) -> None:
    async def fine() -> None:
        return None

    async def down() -> None:
        raise ConnectionRefusedError("[Errno 111] secret internals")

    ok = await make_client(health=HealthChecks(db_probe=fine, disk_free=lambda: 10**12))
    resp = await ok.get("/healthz")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "ok" and body["failed"] == []
    assert body["checks"]["database"]["ok"] and body["checks"]["disk"]["ok"]

    bad = await make_client(health=HealthChecks(db_probe=down, disk_free=lambda: 10**12))
    resp = await bad.get("/healthz")
    body = await resp.json()
    assert resp.status == 503 and body["failed"] == ["database"]
    assert body["checks"]["database"] == {"ok": False, "error": "ConnectionRefusedError"}
    assert "secret" not in await resp.text()

    full = await make_client(health=HealthChecks(db_probe=fine, disk_free=lambda: 1000,
                                                 min_free_bytes=10**6))
    resp = await full.get("/healthz")
    body = await resp.json()
    assert resp.status == 503 and body["failed"] == ["disk"]
    assert body["checks"]["disk"]["free_bytes"] == 1000
