"""A phone registered over TCP whose connection is gone: the call fails at once with 408
(RFC 3261 17.1.4 transport error) instead of ringing into Timer B for 32 seconds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pjsua2 as pj

from scenarios.digest_client import authorization
from switch.sip import Response
from tests.support.pjphone import make_phone
from tests.support.server import start_switch
from tests.support.sipclient import StreamClient


def test_call_to_a_closed_tcp_binding_fails_fast(pj_lib: Any, tmp_path: Path) -> None:
    switch = start_switch(tmp_path)
    try:
        tcp = StreamClient(switch.host, switch.port)
        uri = f"sip:{switch.host}"

        def register(cseq: int, auth: str | None) -> Response:
            tcp.send((
                f"REGISTER {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP 127.0.0.1:{tcp.local_port};branch=z9hG4bKtcp{cseq}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:501411@{switch.host}>;tag=t\r\n"
                f"To: <sip:501411@{switch.host}>\r\nCall-ID: tcp-gone\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:501411@127.0.0.1:{tcp.local_port};transport=tcp>\r\n"
                + (f"Authorization: {auth}\r\n" if auth else "")
                + "Content-Length: 0\r\n\r\n").encode())
            return tcp.recv()

        challenge = register(1, None)
        assert challenge.status == 401
        auth = authorization(challenge.headers.get_all("WWW-Authenticate"), method="REGISTER",
                             uri=uri, username="501411", password="demo-501411")
        assert register(2, auth).status == 200
        tcp.close()  # the phone's connection is gone; its binding stays until it expires
        time.sleep(0.3)

        caller = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                            port=switch.port, password="demo-501410", register=True)
        try:
            assert caller.wait_registration(lambda e: e[0] == 200, since=0) is not None
            started = time.monotonic()
            call = caller.call(f"sip:501411@{switch.host}:{switch.port}")
            assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 10)
            assert time.monotonic() - started < 5, "waited for a timer instead"
            assert call.last_status in (408, 480, 503)
        finally:
            caller.shutdown()
    finally:
        switch.stop()
