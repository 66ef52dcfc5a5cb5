"""Phones register with the example credentials, over every transport; bindings survive kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from tests.support.pjphone import make_phone
from tests.support.server import REPO, RunningSwitch, start_switch
from tests.support.sipclient import UdpClient

DEMO = {"501410": "demo-501410", "501411": "demo-501411", "502411": "demo-502411"}


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("reg"))
    yield running
    running.stop()


def registrations(data_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "switch", "registrations", "--data-dir", str(data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_switch_warns_about_demo_passwords(switch: RunningSwitch) -> None:
    assert any("demo password" in ln.lower() for ln in switch.log_lines), switch.log_text()


@pytest.mark.parametrize(("transport", "user"), [("UDP", "501410"), ("TCP", "501411"),
                                                 ("TLS", "502411")])
def test_register_refresh_unregister(pj_lib: Any, switch: RunningSwitch, transport: str,
                                     user: str) -> None:
    port = switch.tls_port if transport == "TLS" else switch.port
    phone = make_phone(pj_lib, transport=transport, user=user, host=switch.host, port=port,
                       password=DEMO[user], register=True, reg_timeout=120)
    try:
        ok = phone.wait_registration(lambda e: e[0] == 200)
        assert ok is not None, (phone.account.reg_events, switch.log_text()[-3000:])
        assert 60 <= ok[2] <= 120
        listing = registrations(switch.data_dir)
        line = next((ln for ln in listing.splitlines() if user in ln), "")
        assert transport.lower() in line.lower(), listing
        assert "pjsua2-test" in line, listing
        # refresh: a second REGISTER on the same Call-ID with a higher CSeq
        phone.account.setRegistration(True)
        assert phone.wait_registration(lambda e: e[0] == 200) is not None
        # unregister: Expires 0 removes the binding
        phone.account.setRegistration(False)
        assert phone.wait_registration(lambda e: e[0] == 200 and e[2] == 0) is not None
        assert user not in registrations(switch.data_dir)
    finally:
        phone.shutdown()


def test_wrong_password_fails(pj_lib: Any, switch: RunningSwitch) -> None:
    phone = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                       port=switch.port, password="not-the-password", register=True)
    try:
        failed = phone.wait_registration(lambda e: e[0] >= 400)
        assert failed is not None and failed[0] in (401, 403), phone.account.reg_events
        assert all(code != 200 for code, _, _ in phone.account.reg_events)
    finally:
        phone.shutdown()


def _register_raw(client: UdpClient, host: str, port: int, user: str, extra: str = "") -> bytes:
    req = (
        f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bK{user}x;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{host}>;tag=f1\r\n"
        f"To: <sip:{user}@{host}>\r\n"
        f"Call-ID: enum-{user}\r\n"
        "CSeq: 1 REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{client.local_port}>\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    client.send(req)
    data = client.recv_maybe(3.0)
    assert data is not None
    return data


def test_unknown_user_gets_the_same_challenge_as_a_known_one(switch: RunningSwitch) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        known = _register_raw(client, switch.host, switch.port, "501410").decode()
        unknown = _register_raw(client, switch.host, switch.port, "509999").decode()
    finally:
        client.close()

    def shape(text: str) -> list[str]:
        lines = [ln for ln in text.split("\r\n") if ln.startswith("WWW-Authenticate")]
        return [ln.split("nonce=")[0] + ln.split("nonce=")[1].split(",", 1)[-1] for ln in lines]

    assert known.startswith("SIP/2.0 401") and unknown.startswith("SIP/2.0 401")
    assert shape(known) == shape(unknown)
    assert len(shape(known)) == 2 and "MD5" in shape(known)[0] and "SHA-256" in shape(known)[1]


def test_binding_survives_kill_9(pj_lib: Any, tmp_path: Path) -> None:
    first = start_switch(tmp_path)
    phone = make_phone(pj_lib, transport="UDP", user="501411", host=first.host,
                       port=first.port, password=DEMO["501411"], register=True, reg_timeout=300)
    try:
        assert phone.wait_registration(lambda e: e[0] == 200) is not None, first.log_text()
        first.stop(signal.SIGKILL)
        listing = registrations(tmp_path)
        assert "501411" in listing  # acknowledged means durable
        second = start_switch(tmp_path, port=first.port)
        try:
            assert any("restored 1 registration" in ln for ln in second.log_lines), second.log_text()
            # a call-routing lookup: 502411 calls 501411, whose binding exists only because
            # it was durable; the phone has not re-registered since the restart.
            caller = make_phone(pj_lib, transport="UDP", user="502411", host=second.host,
                                port=second.port, password=DEMO["502411"], register=True)
            try:
                assert caller.wait_registration(lambda e: e[0] == 200, since=0) is not None
                reg_events = len(phone.account.reg_events)
                call = caller.call(f"sip:501411@{second.host}:{second.port}")
                assert pj_lib.wait_until(lambda: len(phone.account.incoming) == 1, 8), \
                    second.log_text()[-3000:]
                assert len(phone.account.reg_events) == reg_events  # no re-registration
                call.hangup(pj.CallOpParam(True))
                pj_lib.wait_until(lambda: False, 0.5)
            finally:
                caller.shutdown()
        finally:
            second.stop()
    finally:
        phone.shutdown()
