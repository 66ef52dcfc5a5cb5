"""Zero-touch provisioning against `wte serve` (issue 19, "what it must show").

An activation code created with `wte provisioning create-code` for 501412 is claimed once by
a fake Yealink (an HTTP GET with its MAC and model in the User-Agent); the configuration
holds credentials the switch generated (not the user's password), and a pjsua2 phone
registers with them as 501412. The code's second use is refused (410), an unknown MAC gets
404 and is logged, and a source that keeps missing is throttled (429). The database holds
neither the code nor the generated password.
"""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pjsua2 as pj
import pytest

from devices.provisioning import code_hash
from switch.storage.cli import database_url
from switch.storage.devices import read_devices
from tests.support.pjphone import Phone, PjAccount
from tests.support.server import REPO, RunningSwitch, start_switch

YEALINK_MAC = "00:15:65:aa:bb:cc"
YEALINK_UA = f"Yealink SIP-T46S 66.86.0.15 {YEALINK_MAC}"
TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("provisioning")
    running = start_switch(tmp, env={"WTE_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


def create_code(switch: RunningSwitch, user: str) -> str:
    """`wte provisioning create-code`, as a customer admin runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "switch", "provisioning", "create-code", "--user", user,
         "--config", str(switch.config), "--data-dir", str(switch.data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["user"] == user
    assert re.fullmatch(r"\d{16}", data["code"])
    assert data["expires_at"] > time.time() + 6 * 86_400
    return str(data["code"])


def fetch(switch: RunningSwitch, path: str, user_agent: str,
          source: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection(switch.host, switch.http_port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"User-Agent": user_agent})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def setting(body: str, name: str) -> str:
    found = re.search(rf"^{re.escape(name)} = (.*)$", body, re.MULTILINE)
    assert found is not None, f"{name} not in\n{body}"
    return found.group(1)


def register_phone(lib: Any, switch: RunningSwitch, user: str, auth_user: str,
                   password: str) -> Phone:
    """A pjsua2 phone whose identity is `user` and whose digest user name is `auth_user`
    (tests.support.pjphone.make_phone uses one name for both)."""
    import random

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{user}@{switch.host}"
    acfg.sipConfig.transportId = lib.transports["UDP"]
    acfg.regConfig.registrarUri = f"sip:{switch.host}:{switch.port}"
    acfg.regConfig.timeoutSec = 300
    acfg.regConfig.retryIntervalSec = 0
    acfg.regConfig.registerOnAdd = True
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", auth_user, 0, password))
    acfg.mediaConfig.transportConfig.port = random.randrange(20000, 60000, 2)
    acfg.mediaConfig.transportConfig.portRange = 2000
    acfg.natConfig.sipOutboundUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acc = PjAccount()
    acc.create(acfg)
    return Phone(lib, acc, "UDP", f"sip:{user}@{switch.host}")


def test_activation_code_claimed_once_then_a_phone_registers_with_generated_credentials(
        pj_lib: Any, switch: RunningSwitch) -> None:
    code = create_code(switch, "501412")
    mac_plain = YEALINK_MAC.replace(":", "")
    status, body = fetch(switch, f"/provisioning/{mac_plain}.cfg?code={code}", YEALINK_UA)
    assert status == 200, body + switch.log_text()[-2000:]
    # the line is 501412, its credentials are generated, never the user's password
    assert setting(body, "account.1.user_name") == "501412"
    auth_user = setting(body, "account.1.auth_name")
    password = setting(body, "account.1.password")
    assert auth_user != "501412" and re.fullmatch(r"d[0-9a-f]{12}", auth_user)
    assert len(password) >= 20 and "demo-501412" not in body
    assert setting(body, "account.1.sip_server.1.address") == switch.host
    assert setting(body, "account.1.sip_server.1.port") == str(switch.port)
    # time zone, language, BLF keys for the site's colleagues, the voicemail key
    assert setting(body, "local_time.time_zone_name") == "Europe/Paris"
    assert setting(body, "lang.gui") == "French"
    blf = re.findall(r"^linekey\.\d+\.value = (\d+)$", body, re.MULTILINE)
    assert {"501410", "501411", "501420"} <= set(blf) and "501412" not in blf
    assert setting(body, "voice_mail.number.1") == "*86"

    # the code's second use is refused, by the same MAC or another one
    assert fetch(switch, f"/provisioning/{mac_plain}.cfg?code={code}", YEALINK_UA)[0] == 410
    assert fetch(switch, f"/provisioning/001565000001.cfg?code={code}", YEALINK_UA)[0] == 410

    # a pjsua2 phone registers with the generated credentials as 501412
    phone = register_phone(pj_lib, switch, "501412", auth_user, password)
    try:
        event = phone.wait_registration(lambda e: e[0] in (200, 401, 403), since=0)
        assert event is not None and event[0] == 200, (event, switch.log_text()[-3000:])
        rows = asyncio_read_devices(switch)
        assert any(r.account.endswith(":501412") and r.active for r in rows), rows
    finally:
        phone.shutdown()
        pj_lib.wait_until(lambda: False, 0.3)

    # a wrong password for the generated user name is refused like any other
    bad = register_phone(pj_lib, switch, "501412", auth_user, password[:-1] + "x")
    try:
        event = bad.wait_registration(lambda e: e[0] >= 300, since=0)
        assert event is not None and event[0] in (401, 403), event
    finally:
        bad.shutdown()

    # stored: the code's hash only, the credential's HA1s only
    db = sqlite3.connect(str(switch.data_dir / "wte.db"))
    try:
        dump = "\n".join(db.iterdump())
        (claimed,) = db.execute("SELECT claimed_mac FROM activation_codes WHERE code_hash = ?",
                                (code_hash(code),)).fetchone()
    finally:
        db.close()
    assert claimed == YEALINK_MAC
    assert code not in dump and password not in dump and auth_user in dump

    # the known MAC fetches its file again without a code: no password in it
    status, again = fetch(switch, f"/provisioning/{mac_plain}.cfg", YEALINK_UA)
    assert status == 200
    assert setting(again, "account.1.auth_name") == auth_user
    assert "account.1.password" not in again

    # reset to factory settings, the phone claims a new code: new credentials replace
    # the old ones, which no longer register
    status, renewed = fetch(switch, f"/provisioning/{mac_plain}.cfg?code="
                            f"{create_code(switch, '501412')}", YEALINK_UA)
    assert status == 200, renewed
    new_user = setting(renewed, "account.1.auth_name")
    assert new_user != auth_user and setting(renewed, "account.1.user_name") == "501412"
    old = register_phone(pj_lib, switch, "501412", auth_user, password)
    try:
        event = old.wait_registration(lambda e: e[0] >= 300, since=0)
        assert event is not None and event[0] in (401, 403), event
    finally:
        old.shutdown()
    renewed_phone = register_phone(pj_lib, switch, "501412", new_user,
                                   setting(renewed, "account.1.password"))
    try:
        event = renewed_phone.wait_registration(lambda e: e[0] in (200, 401, 403), since=0)
        assert event is not None and event[0] == 200, event
    finally:
        renewed_phone.shutdown()


def asyncio_read_devices(switch: RunningSwitch) -> list[Any]:
    import asyncio

    return asyncio.run(read_devices(database_url(str(switch.data_dir)), time.time()))


def test_unknown_mac_gets_404_and_is_logged(switch: RunningSwitch) -> None:
    status, _ = fetch(switch, "/provisioning/001565123456.cfg", YEALINK_UA)
    assert status == 404
    status, _ = fetch(switch, "/provisioning/activate", "Yealink SIP-T46S 66.86.0.15")
    assert status == 404  # no MAC at all
    status, _ = fetch(switch, "/provisioning/001565123456.cfg?code=1234567890123456",
                      YEALINK_UA)
    assert status == 404  # a code that was never issued
    deadline = time.monotonic() + 5
    while "provisioning miss" not in switch.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(r"provisioning miss status=404 reason=unknown device .*"
                     r"mac=00:15:65:12:34:56", switch.log_text())


def test_a_source_that_keeps_missing_is_throttled(switch: RunningSwitch) -> None:
    guesser = "127.0.0.2"  # its own source address: the other tests' source stays clear
    statuses = [fetch(switch, f"/provisioning/0015650000{i:02x}.cfg?code={i:016d}",
                      YEALINK_UA, source=guesser)[0] for i in range(12)]
    assert statuses[:10] == [404] * 10
    assert statuses[10:] == [429, 429]
    # another source is not affected
    assert fetch(switch, "/provisioning/001565999999.cfg", YEALINK_UA)[0] == 404


def test_admin_api_creates_codes_with_the_operator_token_only(switch: RunningSwitch) -> None:
    def post(body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(switch.host, switch.http_port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request("POST", "/api/v1/provisioning/codes", json.dumps(body), headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    assert post({"user": "501420"}, None)[0] == 403
    assert post({"user": "501420"}, "wrong")[0] == 403
    assert post({"user": "599999"}, TOKEN)[0] == 404
    assert post({"user": "501420", "days": 0}, TOKEN)[0] == 400
    status, data = post({"user": "501420", "days": 2}, TOKEN)
    assert status == 201 and re.fullmatch(r"\d{16}", data["code"])
    # a Poly claims it: XML with the generated credentials for the workspace line
    status, body = fetch(switch, f"/provisioning/0004f2010203.cfg?code={data['code']}",
                         "PolycomVVX-VVX_450-UA/6.4.3.5018")
    assert status == 200, body
    assert 'reg.1.address="501420"' in body and 'reg.1.auth.password="' in body
