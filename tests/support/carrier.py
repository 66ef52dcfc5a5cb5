"""A carrier stand-in for the trunk of the test configuration: a small UDP user agent that
answers INVITEs the switch sends and can place calls into the switch.

It listens on a free port (never the example trunk's well-known 127.0.0.1:5090, which a
running switch or another test run may hold, issue 11); point the switch's trunk at it with
`tests.support.server.config_with(..., carrier_port=carrier.port)`, or bind the port a
switch's configuration already names (`Carrier(port=switch.carrier_port)`).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable

from switch.sip import Request, Response, make_response, parse_message

SDP = (b"v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40990 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


class Carrier:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.addr: tuple[str, int] = (host, int(self.sock.getsockname()[1]))
        self.received: list[Request | Response] = []

    @property
    def port(self) -> int:
        return self.addr[1]

    def close(self) -> None:
        self.sock.close()

    def _via_sent_by(self) -> str:
        return f"{self.addr[0]}:{self.addr[1]}"

    def reset(self) -> None:
        """Forget what earlier tests left: queued datagrams (late retransmissions, BYEs) and
        the `received` list, so one carrier can serve a whole test module."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self.sock.setblocking(True)
        self.received.clear()

    def _recv(self, timeout: float) -> tuple[Request | Response, tuple[str, int]] | None:
        self.sock.settimeout(timeout)
        try:
            data, src = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        msg = parse_message(data)
        self.received.append(msg)
        return msg, src

    def expect_request(self, method: str, timeout: float = 5.0,
                       poll: Callable[[], None] | None = None) -> tuple[Request, tuple[str, int]]:
        """Wait for a request; `poll` runs between short reads (to drive pjsua2 phones)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if poll is not None:
                poll()
            got = self._recv(0.02 if poll is not None else max(0.01, end - time.monotonic()))
            if got is None:
                if poll is not None:
                    continue
                break
            msg, src = got
            if isinstance(msg, Request) and msg.method == method:
                return msg, src
            if isinstance(msg, Request) and msg.method not in ("ACK",):
                ok = make_response(msg, 200, to_tag="c" + secrets.token_hex(3))
                self.sock.sendto(ok.to_bytes(), src)
        raise AssertionError(f"the carrier got no {method}; saw {self.received[-5:]}")

    def answer(self, invite: Request, src: tuple[str, int], status: int = 200) -> None:
        tag = "carrier" + secrets.token_hex(3)
        self.sock.sendto(make_response(invite, 180, to_tag=tag).to_bytes(), src)
        headers = [("Contact", f"<sip:carrier@{self.addr[0]}:{self.addr[1]}>")]
        body = b""
        if status == 200:
            headers.append(("Content-Type", "application/sdp"))
            body = SDP
        self.sock.sendto(make_response(invite, status, to_tag=tag, headers=headers,
                                       body=body).to_bytes(), src)

    def call(self, switch_host: str, switch_port: int, number: str,
             from_number: str = "+33612345678") -> str:
        """Send an INVITE into the switch as the carrier; returns its Call-ID."""
        call_id = secrets.token_hex(8) + "@carrier"
        req = (
            f"INVITE sip:{number}@{switch_host}:{switch_port};user=phone SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self._via_sent_by()};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{from_number}@carrier.example;user=phone>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{number}@{switch_host};user=phone>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:carrier@{self.addr[0]}:{self.addr[1]}>\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(SDP)}\r\n\r\n"
        ).encode() + SDP
        self.sock.sendto(req, (switch_host, switch_port))
        return call_id

    def final_response(self, call_id: str, timeout: float = 8.0) -> Response:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self._recv(max(0.01, end - time.monotonic()))
            if got is None:
                break
            msg, _ = got
            if isinstance(msg, Response) and msg.call_id == call_id and msg.status >= 200:
                return msg
        raise AssertionError(f"no final response for {call_id}; saw {self.received[-5:]}")

    def ack(self, ok: Response, switch_host: str, switch_port: int) -> None:
        """ACK a 2xx (RFC 3261 13.2.2.4) so the switch stops retransmitting it."""
        ack = (
            f"ACK sip:wte@{switch_host}:{switch_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self._via_sent_by()};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
            f"Call-ID: {ok.call_id}\r\nCSeq: {ok.cseq.seq} ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        self.sock.sendto(ack, (switch_host, switch_port))

    def bye(self, ok: Response, switch_host: str, switch_port: int) -> None:
        """End a call this carrier placed and the switch answered (RFC 3261 15.1.1)."""
        bye = (
            f"BYE sip:wte@{switch_host}:{switch_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self._via_sent_by()};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
            f"Call-ID: {ok.call_id}\r\nCSeq: {ok.cseq.seq + 1} BYE\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        self.sock.sendto(bye, (switch_host, switch_port))
