"""Phones registered over UDP are pinged so their NAT mapping stays open."""

from __future__ import annotations

from pathlib import Path

from scenarios.digest_client import authorization
from switch.sip import Request, parse_message
from tests.support.server import config_with, start_switch
from tests.support.sipclient import UdpClient


def test_udp_binding_receives_keepalive_pings(tmp_path: Path) -> None:
    switch = start_switch(tmp_path / "var",
                          config=config_with(tmp_path, {"registrar.nat_ping_interval": 1}))
    client = UdpClient(switch.host, switch.port)
    try:
        uri = f"sip:{switch.host}"

        def register(cseq: int, auth: str | None) -> None:
            client.send((
                f"REGISTER {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bKka{cseq};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:501410@{switch.host}>;tag=k\r\n"
                f"To: <sip:501410@{switch.host}>\r\nCall-ID: keepalive-test\r\n"
                f"CSeq: {cseq} REGISTER\r\nContact: <sip:501410@127.0.0.1:{client.local_port}>\r\n"
                + (f"Authorization: {auth}\r\n" if auth else "")
                + "Content-Length: 0\r\n\r\n").encode())

        register(1, None)
        challenge = client.recv()
        assert challenge.status == 401
        auth = authorization(challenge.headers.get_all("WWW-Authenticate"), method="REGISTER",
                             uri=uri, username="501410", password="demo-501410")
        register(2, auth)
        assert client.recv().status == 200
        pings = []
        for _ in range(40):
            data = client.recv_maybe(0.1)
            if data is None:
                continue
            msg = parse_message(data)
            if isinstance(msg, Request) and msg.method == "OPTIONS":
                pings.append(msg)
                if len(pings) == 2:
                    break
        assert len(pings) == 2, "no keep-alive pings within 4 s at a 1 s interval"
        assert f"127.0.0.1:{client.local_port}" in str(pings[0].uri)
    finally:
        client.close()
        switch.stop()
