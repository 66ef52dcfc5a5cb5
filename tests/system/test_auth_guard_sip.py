"""The failure guard over real SIP (issue 20 item 5): an attacker on the company's NAT
address who logs into its own account between guesses is still blocked, and the phones
already registered from that address keep registering."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from scenarios.digest_client import authorization
from switch.sip import Response, parse_message
from tests.support.server import RunningSwitch, config_with, start_switch
from tests.support.sipclient import UdpClient

DEMO = {"501410": "demo-501410", "501411": "demo-501411", "502411": "demo-502411"}


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("guard")
    config = config_with(tmp, {"auth.max_failures": 5, "auth.slow_after": 3,
                               "auth.failure_window": 600, "auth.block_seconds": 600})
    running = start_switch(tmp / "data", config=config)
    yield running
    running.stop()


def _register(client: UdpClient, switch: RunningSwitch, user: str, password: str,
              call_id: str, cseq: int) -> Response:
    """One REGISTER with its challenge round; the final response (waits out back-off)."""
    uri = f"sip:{switch.host}:{switch.port}"

    def send(auth: str | None, n: int) -> Response:
        req = (
            f"REGISTER {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bK"
            f"{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{switch.host}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{user}@{switch.host}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {n} REGISTER\r\n"
            f"Contact: <sip:{user}@127.0.0.1:{client.local_port}>\r\n"
            "Expires: 300\r\n"
            + (f"Authorization: {auth}\r\n" if auth else "")
            + "Content-Length: 0\r\n\r\n"
        ).encode()
        client.send(req)
        while True:
            data = client.recv_maybe(12.0)
            assert data is not None, "no answer"
            msg = parse_message(data)
            if isinstance(msg, Response) and msg.status >= 200:
                return msg

    challenge = send(None, cseq)
    assert challenge.status == 401  # even a blocked address is challenged
    auth = authorization(challenge.headers.get_all("WWW-Authenticate"), method="REGISTER",
                         uri=uri, username=user, password=password)
    assert auth is not None
    return send(auth, cseq + 1)


def test_guesses_between_own_logins_block_the_address_not_its_phones(
        switch: RunningSwitch) -> None:
    phone = UdpClient(switch.host, switch.port)  # a colleague's phone behind the NAT
    attacker = UdpClient(switch.host, switch.port)  # same address (127.0.0.1)
    try:
        assert _register(phone, switch, "501410", DEMO["501410"], "phone-1", 1).status == 200
        statuses = []
        for i in range(8):
            # its own account logs in fine (this used to reset the failure count)...
            own = _register(attacker, switch, "502411", DEMO["502411"], "own", 10 * i + 1)
            assert own.status == 200
            # ...and a guess at a colleague's password
            guess = _register(attacker, switch, "501411", f"guess-{i}", f"g{i}", 1)
            statuses.append(guess.status)
            if any("source=127.0.0.1: SLOWED -> BLOCKED" in ln for ln in switch.log_lines):
                break
        assert all(s == 403 for s in statuses)
        assert any("auth guard source=127.0.0.1: SLOWED -> BLOCKED" in ln
                   for ln in switch.log_lines), switch.log_text()
        # now even the right password of an account not registered from here is refused
        assert _register(attacker, switch, "501411", DEMO["501411"], "right", 1).status == 403
        # while the phones registered from this address keep refreshing
        assert _register(phone, switch, "501410", DEMO["501410"], "phone-1", 3).status == 200
        assert _register(attacker, switch, "502411", DEMO["502411"], "own", 99).status == 200
    finally:
        phone.close()
        attacker.close()

