"""Each emergency call alerts the customer's admins through its webhook (issue 7)."""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from scenarios.digest_client import authorization
from switch.sip import parse_message
from tests.support.carrier import Carrier
from tests.support.server import EXAMPLE_CONFIG, start_switch, write_config
from tests.support.sipclient import UdpClient
from tests.support.webhook import WebhookReceiver


def test_emergency_call_posts_to_the_customers_webhook(tmp_path: Path) -> None:
    hook = WebhookReceiver()
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["customers"][0]["emergency_webhook"] = hook.url("/hook")
    carrier = Carrier()
    config = write_config(tmp_path / "config.yaml", data, carrier_port=carrier.port)
    switch = start_switch(tmp_path / "var", config=config)
    client = UdpClient(switch.host, switch.port)
    try:
        ruri = f"sip:112@{switch.host}"

        def invite(auth: str | None, cseq: int) -> None:
            client.send((
                f"INVITE {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bKwh{cseq};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:501410@{switch.host}>;tag=w\r\nTo: <{ruri}>\r\n"
                f"Call-ID: webhook-call\r\nCSeq: {cseq} INVITE\r\n"
                f"Contact: <sip:501410@127.0.0.1:{client.local_port}>\r\n"
                + (f"Proxy-Authorization: {auth}\r\n" if auth else "")
                + "Content-Length: 0\r\n\r\n").encode())

        invite(None, 1)
        challenge = None
        while challenge is None or getattr(challenge, "status", 0) < 200:
            raw = client.recv_maybe(5)
            assert raw is not None
            challenge = parse_message(raw)
        auth = authorization(challenge.headers.get_all("Proxy-Authenticate"), method="INVITE",
                             uri=ruri, username="501410", password="demo-501410")
        invite(auth, 2)
        req, src = carrier.expect_request("INVITE")
        carrier.answer(req, src, status=486)
        for _ in range(50):
            if hook.received:
                break
            threading.Event().wait(0.1)
    finally:
        client.close()
        carrier.close()
        switch.stop()
        hook.close()
    assert hook.received, "no webhook call"
    event = hook.received[0]
    assert event["event"] == "emergency_call" and event["emergency_number"] == "112"
    assert event["caller"] == "501410" and event["site"] == "01"
    assert "Toulouse" in str(event["location"]) and event["nomadic"] is False
