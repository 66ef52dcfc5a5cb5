"""WebRTC calls through the switch (issue 23), with an aiortc "browser" (no browser needed).

The client (tests/support/webrtc_client.py) speaks SIP over WebSocket and WebRTC media
(ICE, DTLS-SRTP, Opus or PCMU) from its own aiortc stack; the other party is a pjsua2
phone over UDP with plain RTP. Each side's recording must hold the other's tone, so the
gateway's Opus <-> G.711 path is checked by what is heard, both ways.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.audio import dominant_frequency
from tests.support.pjphone import Phone, make_phone
from tests.support.server import REPO, RunningSwitch, start_switch
from tests.support.webrtc_client import BrowserClient, open_ws

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
ADMIN_TOKEN = "webrtc-test-admin-token"
BROWSER_HZ = 700.0
PHONE_HZ = 440.0


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("webrtc")
    running = start_switch(tmp, env={"WTE_WEBRTC_SECRET": "test-secret-0123456789abcdef",
                                     "WTE_ADMIN_TOKEN": ADMIN_TOKEN})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phone(pj_lib: Any, switch: RunningSwitch) -> Iterator[Phone]:
    made = make_phone(pj_lib, transport="UDP", user="501411", host=switch.host,
                      port=switch.port, password="demo-501411", register=True)
    assert made.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    made.shutdown()


@pytest.fixture(autouse=True)
def idle(pj_lib: Any, phone: Phone) -> Iterator[None]:
    phone.account.incoming.clear()
    yield
    for call in phone.account.incoming:
        call.stop_media()  # the tone generator goes while its call still holds its port
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.3)
    phone.account.answer_with = None
    phone.account.tone_freq = None
    phone.account.record_path = None


def http(switch: RunningSwitch, method: str, path: str, user: str, password: str,
         ) -> tuple[int, Any, dict[str, str]]:
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}{path}",
                                 method=method, data=b"" if method == "POST" else None)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def credentials(switch: RunningSwitch, user: str = "501410") -> dict[str, Any]:
    status, body, headers = http(switch, "POST", "/api/v1/webrtc/credentials", user,
                                 f"demo-{user}")
    assert status == 200, body
    assert headers.get("Cache-Control") == "no-store"
    return dict(body)


async def pj_wait(pj_lib: Any, cond: Callable[[], bool], timeout: float) -> bool:
    """Poll pjsua2 (on this thread) while the event loop runs aiortc."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        pj_lib.poll(5)
        await asyncio.sleep(0.005)
    return cond()


async def browser(switch: RunningSwitch, *, codecs: tuple[str, ...] = ("opus",),
                  ws: Any) -> BrowserClient:
    creds = credentials(switch)
    assert creds["username"] == "501410" and creds["password"] != "demo-501410"
    client = BrowserClient(ws, switch.host, switch.port, creds["username"], creds["password"],
                           tone=BROWSER_HZ, codecs=codecs)
    ok = await client.register()
    assert ok.status == 200, ok
    return client


def test_credentials_route_refuses_wrong_passwords(switch: RunningSwitch) -> None:
    status, body, headers = http(switch, "POST", "/api/v1/webrtc/credentials", "501410",
                                 "wrong")
    assert status == 401 and "password" not in (body or {}), body
    assert headers.get("WWW-Authenticate", "").startswith("Basic")


def test_portal_session_gets_credentials_and_admin_tokens_do_not(switch: RunningSwitch) -> None:
    """The softphone opened from the portal signs in with the portal's session (issue 18):
    a user's session token gets its own short-lived password; a bad token gets 401."""
    from tests.support.api import ApiClient
    base = ApiClient(f"http://{switch.host}:{switch.http_port}")
    user = base.login("501411", "demo-501411")
    got = user.post("/api/v1/webrtc/credentials")
    assert got.status == 200, got.body
    assert got.body["username"] == "501411" and got.body["password"] != "demo-501411"
    assert base.with_token("not-a-session").post("/api/v1/webrtc/credentials").status == 401


@pytest.mark.parametrize("codecs", [("opus",), ("PCMU",)], ids=["opus", "pcmu"])
async def test_browser_calls_a_desk_phone_and_each_hears_the_other(
        pj_lib: Any, switch: RunningSwitch, phone: Phone, tmp_path: Path,
        codecs: tuple[str, ...]) -> None:
    heard_by_phone = tmp_path / "phone-heard.wav"
    phone.account.answer_with, phone.account.tone_freq = 200, PHONE_HZ
    phone.account.record_path = str(heard_by_phone)
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws, codecs=codecs)
        try:
            task = asyncio.ensure_future(client.call("501411"))
            assert await pj_wait(pj_lib, task.done, 15), switch.log_text()[-3000:]
            call = task.result()
            assert call.final is not None and call.final.status == 200, call.final
            assert await pj_wait(pj_lib, lambda: len(call.heard.samples()) > 8000 * 3, 10), \
                switch.log_text()[-3000:]
            await pj_wait(pj_lib, lambda: False, 0.5)
            freq, level = call.heard.dominant(skip=1.0)
            assert abs(freq - PHONE_HZ) < 15 and level > 300, (freq, level)
            await client.hang_up(call)
            await pj_wait(pj_lib, lambda: all(c.state == DISCONNECTED
                                              for c in phone.account.incoming), 5)
        finally:
            await client.close()
    phone.account.incoming[0].stop_media()
    freq, level = dominant_frequency(heard_by_phone, skip_seconds=1.0)
    assert abs(freq - BROWSER_HZ) < 15 and level > 300, (freq, level)
    codec = "opus" if codecs == ("opus",) else "PCMU"
    assert any(f"codec={codec}" in ln for ln in switch.log_lines), switch.log_text()[-2000:]


async def test_desk_phone_calls_the_browser_which_answers(
        pj_lib: Any, switch: RunningSwitch, phone: Phone, tmp_path: Path) -> None:
    heard_by_phone = tmp_path / "phone-heard.wav"
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws)
        try:
            pj_call = phone.call(f"sip:501410@{switch.host}:{switch.port}",
                                 tone_freq=PHONE_HZ, record_path=str(heard_by_phone))
            incoming = asyncio.ensure_future(client.incoming.get())
            assert await pj_wait(pj_lib, incoming.done, 10), switch.log_text()[-3000:]
            call = incoming.result()
            assert "fingerprint" in call.invite.body.decode()  # the switch offered WebRTC
            await client.answer(call)
            assert await pj_wait(pj_lib, lambda: pj_call.state == CONFIRMED, 10)
            assert await pj_wait(pj_lib, lambda: len(call.heard.samples()) > 8000 * 3, 10), \
                switch.log_text()[-3000:]
            freq, level = call.heard.dominant(skip=1.0)
            assert abs(freq - PHONE_HZ) < 15 and level > 300, (freq, level)
            pj_call.hangup(pj.CallOpParam(True))
            ended = asyncio.ensure_future(call.ended.wait())
            assert await pj_wait(pj_lib, ended.done, 5)
        finally:
            await client.close()
    pj_call.stop_media()
    freq, level = dominant_frequency(heard_by_phone, skip_seconds=1.5)
    assert abs(freq - BROWSER_HZ) < 15 and level > 300, (freq, level)


async def test_echo_test_returns_the_browsers_own_tone(switch: RunningSwitch) -> None:
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws)
        try:
            call = await client.call("*43")
            assert call.final is not None and call.final.status == 200, call.final
            await asyncio.sleep(4.0)
            freq, level = call.heard.dominant(last=2.0)
            assert abs(freq - BROWSER_HZ) < 15 and level > 300, (freq, level)
            req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics")
            req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
            with urllib.request.urlopen(req, timeout=5) as resp:
                metrics = resp.read().decode()
            assert "wte_webrtc_legs 1" in metrics, metrics  # this call's leg, held now
            await client.hang_up(call)
        finally:
            await client.close()


def test_short_lived_password_is_refused_over_udp(pj_lib: Any, switch: RunningSwitch) -> None:
    creds = credentials(switch)
    udp = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                     port=switch.port, password=creds["password"], register=True)
    try:
        event = udp.wait_registration(lambda e: e[0] >= 200, since=0)
        assert event is not None and event[0] == 403, event
    finally:
        udp.shutdown()


async def test_hold_and_resume_from_the_browser(pj_lib: Any, switch: RunningSwitch,
                                                phone: Phone) -> None:
    phone.account.answer_with, phone.account.tone_freq = 200, PHONE_HZ
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws)
        try:
            task = asyncio.ensure_future(client.call("501411"))
            assert await pj_wait(pj_lib, task.done, 15)
            call = task.result()
            await pj_wait(pj_lib, lambda: False, 2.0)
            assert abs(call.heard.dominant(last=1.0)[0] - PHONE_HZ) < 15
            held = asyncio.ensure_future(client.reinvite(call, "sendonly"))
            assert await pj_wait(pj_lib, held.done, 5)
            answer = held.result()
            assert answer.status == 200 and b"a=recvonly" in answer.body, answer.body
            assert b"a=fingerprint" in answer.body  # still the same DTLS session
            await pj_wait(pj_lib, lambda: False, 2.0)
            _, level = call.heard.dominant(last=1.0)
            assert level < 100, level  # the relay bridges nothing while we hold
            resumed = asyncio.ensure_future(client.reinvite(call, "sendrecv"))
            assert await pj_wait(pj_lib, resumed.done, 5)
            assert resumed.result().status == 200
            assert b"a=sendrecv" in resumed.result().body
            await pj_wait(pj_lib, lambda: False, 2.0)
            freq, level = call.heard.dominant(last=1.0)
            assert abs(freq - PHONE_HZ) < 15 and level > 300, (freq, level)
            await client.hang_up(call)
        finally:
            await client.close()


def _api(switch: RunningSwitch, path: str, user: str) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}{path}")
    token = base64.b64encode(f"{user}:demo-{user}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, resp.read()


async def test_browser_leaves_a_voicemail(pj_lib: Any, switch: RunningSwitch,
                                          tmp_path: Path) -> None:
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws)
        try:
            call = await client.call("501412")  # not registered: its mailbox answers
            assert call.final is not None and call.final.status == 200, call.final
            deadline = time.monotonic() + 20
            while not any(f"recording call={call.call_id}" in ln for ln in switch.log_lines):
                assert time.monotonic() < deadline, switch.log_text()[-3000:]
                await asyncio.sleep(0.2)
            _, greeting = call.heard.dominant(skip=0.0)
            assert greeting > 100, greeting  # the browser heard the greeting
            await asyncio.sleep(3.0)
            await client.hang_up(call)
        finally:
            await client.close()
    status, body = _api(switch, "/voicemail/v1/messages", "501412")
    messages = json.loads(body)["messages"]
    assert status == 200 and messages, body
    status, audio = _api(switch, f"/voicemail/v1/messages/{messages[0]['id']}/audio",
                         "501412")
    wav = tmp_path / "message.wav"
    wav.write_bytes(audio)
    freq, level = dominant_frequency(wav, skip_seconds=0.3)
    assert abs(freq - BROWSER_HZ) < 15 and level > 300, (freq, level)


async def test_browser_reaches_the_auto_attendant_and_dials_by_extension(
        pj_lib: Any, switch: RunningSwitch, phone: Phone) -> None:
    out = subprocess.run([sys.executable, "-m", "switch", "schedule", "set", "office", "open",
                          "--config", str(switch.config), "--data-dir", str(switch.data_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    await asyncio.sleep(1.2)  # the running switch applies it within a second
    phone.account.answer_with, phone.account.tone_freq = 200, PHONE_HZ
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws)
        try:
            task = asyncio.ensure_future(client.call("400"))  # the reception attendant
            assert await pj_wait(pj_lib, task.done, 10)
            call = task.result()
            assert call.final is not None and call.final.status == 200, call.final
            await pj_wait(pj_lib, lambda: False, 1.5)
            assert call.heard.dominant(skip=0.0)[1] > 100  # the attendant's greeting
            for digit in "411#":  # dial by extension, as SIP INFO (the page's DTMF)
                info = asyncio.ensure_future(client.info_digit(call, digit))
                assert await pj_wait(pj_lib, info.done, 5)
                assert info.result().status == 200
            assert await pj_wait(pj_lib, lambda: bool(phone.account.incoming), 12), \
                switch.log_text()[-3000:]
            await pj_wait(pj_lib, lambda: False, 3.0)
            freq, level = call.heard.dominant(last=1.0)
            assert abs(freq - PHONE_HZ) < 15 and level > 300, (freq, level)
            await client.hang_up(call)
        finally:
            await client.close()


async def test_rfc4733_digits_from_a_desk_phone_reach_the_browser_as_tones(
        pj_lib: Any, switch: RunningSwitch, phone: Phone) -> None:
    async with open_ws(switch.host, switch.port + 2) as ws:
        client = await browser(switch, ws=ws)
        try:
            pj_call = phone.call(f"sip:501410@{switch.host}:{switch.port}")  # no tone
            incoming = asyncio.ensure_future(client.incoming.get())
            assert await pj_wait(pj_lib, incoming.done, 10)
            call = incoming.result()
            await client.answer(call)
            assert await pj_wait(pj_lib, lambda: pj_call.state == CONFIRMED, 10)
            await pj_wait(pj_lib, lambda: False, 1.0)
            call.heard.clear()
            pj_call.dialDtmf("5")  # RFC 4733 events (pjsua2's default)
            await pj_wait(pj_lib, lambda: False, 1.0)
            freq, level = call.heard.dominant(skip=0.0)
            # "5" is 770 Hz + 1336 Hz (ITU-T Q.23): the gateway plays the pair in-band
            assert min(abs(freq - 770), abs(freq - 1336)) < 20 and level > 100, (freq, level)
            pj_call.hangup(pj.CallOpParam(True))
            ended = asyncio.ensure_future(call.ended.wait())
            assert await pj_wait(pj_lib, ended.done, 5)
        finally:
            await client.close()


async def test_a_desk_phone_transfers_the_browser_to_another_phone(
        pj_lib: Any, switch: RunningSwitch, phone: Phone, tmp_path: Path) -> None:
    target = make_phone(pj_lib, transport="UDP", user="501412", host=switch.host,
                        port=switch.port, password="demo-501412", register=True)
    heard_by_target = tmp_path / "target-heard.wav"
    try:
        assert target.wait_registration(lambda e: e[0] == 200, since=0) is not None
        target.account.answer_with, target.account.tone_freq = 200, 880.0
        target.account.record_path = str(heard_by_target)
        phone.account.answer_with = 200
        async with open_ws(switch.host, switch.port + 2) as ws:
            client = await browser(switch, ws=ws)
            try:
                task = asyncio.ensure_future(client.call("501411"))
                assert await pj_wait(pj_lib, task.done, 15)
                call = task.result()
                answered = phone.account.incoming[0]
                assert await pj_wait(pj_lib, lambda: answered.state == CONFIRMED, 5)
                # RFC 3515: the desk phone hands the browser to 501412
                answered.xfer(f"sip:501412@{switch.host}:{switch.port}", pj.CallOpParam(True))
                assert await pj_wait(pj_lib, lambda: bool(target.account.incoming), 8), \
                    switch.log_text()[-3000:]
                new = target.account.incoming[0]
                assert await pj_wait(pj_lib, lambda: new.state == CONFIRMED, 5)
                assert await pj_wait(pj_lib, lambda: answered.state == DISCONNECTED, 5)
                await pj_wait(pj_lib, lambda: False, 2.5)
                freq, level = call.heard.dominant(last=1.0)  # the browser hears the target
                assert abs(freq - 880) < 15 and level > 300, (freq, level)
                new.stop_media()
                await client.hang_up(call)
                assert await pj_wait(pj_lib, lambda: new.state == DISCONNECTED, 5)
            finally:
                await client.close()
    finally:
        pj_lib.ep.hangupAllCalls()
        target.shutdown()
    freq, level = dominant_frequency(heard_by_target, skip_seconds=0.5)
    assert abs(freq - BROWSER_HZ) < 15 and level > 300, (freq, level)
