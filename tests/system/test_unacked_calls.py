"""Issue 20, critical: a 2xx that is never ACKed. The call must end at 64*T1 (BYE, record
closed), the switch must go back to idle (the old code re-fired the ended call's timer
forever, logging each time), and registrations must still be served afterwards."""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

from scenarios.digest_client import authorization
from switch.sip import Response, parse_message
from tests.support.server import call_records, config_with, start_switch
from tests.support.sipclient import UdpClient

T1 = 0.05  # 64*T1 = 3.2 s instead of 32 s
# 150 in the suite; WTE_UNACKED_CALLS=2000 reproduces the review's load (about a minute)
CALLS = int(os.environ.get("WTE_UNACKED_CALLS", "150"))
SDP = (b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40100 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
       b"a=rtpmap:101 telephone-event/8000\r\n")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _responses(client: UdpClient, wanted: int, timeout: float) -> list[Response]:
    out: list[Response] = []
    end = time.monotonic() + timeout
    while len(out) < wanted and time.monotonic() < end:
        raw = client.recv_maybe(0.5)
        if raw is None:
            continue
        msg = parse_message(raw)
        if isinstance(msg, Response):
            out.append(msg)
    return out


def _invite(client: UdpClient, host: str, call_id: str, cseq: int, auth: str | None) -> bytes:
    ruri = f"sip:*43@{host}"
    return (
        f"INVITE {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bK{call_id}{cseq};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:501410@{host}>;tag=u{cseq}\r\nTo: <{ruri}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n"
        f"Contact: <sip:501410@127.0.0.1:{client.local_port}>\r\n"
        + (f"Proxy-Authorization: {auth}\r\n" if auth else "")
        + f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP


def test_unacked_calls_end_at_64_t1_and_the_switch_goes_idle(tmp_path: Path) -> None:
    config = config_with(tmp_path, {
        "transaction.t1": T1, "auth.max_failures": 100000,
        **{f"calls.limits.{scope}_{kind}": 0 for scope in ("account", "site")
           for kind in ("concurrent", "per_minute")}})
    switch = start_switch(tmp_path / "var", config=config)
    client = UdpClient(switch.host, switch.port)
    # room for thousands of 2xx retransmissions while the test reads (capped by the kernel)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    try:
        ruri = f"sip:*43@{switch.host}"
        call_ids = [f"unacked-{i}-{secrets.token_hex(3)}" for i in range(CALLS)]
        for call_id in call_ids:  # each call gets its own challenge (nonce counts)
            client.send(_invite(client, switch.host, call_id, 1, None))
        challenges: dict[str, Response] = {}
        end = time.monotonic() + 10
        while len(challenges) < CALLS and time.monotonic() < end:
            challenges.update((r.call_id, r) for r in _responses(client, 1, 0.5)
                              if r.status == 407)
        assert set(challenges) == set(call_ids)
        for call_id, challenge in challenges.items():
            client.send(_ack(client, switch.host, challenge))
            auth = authorization(challenge.headers.get_all("Proxy-Authenticate"),
                                 method="INVITE", uri=ruri, username="501410",
                                 password="demo-501410")
            client.send(_invite(client, switch.host, call_id, 2, auth))
        answered: set[str] = set()
        end = time.monotonic() + 10
        while not set(call_ids) <= answered and time.monotonic() < end:
            answered.update(r.call_id for r in _responses(client, 1, 0.5)
                            if r.status == 200 and r.cseq.method == "INVITE")
        assert set(call_ids) <= answered, f"{len(answered)} of {CALLS} answered"
        # never ACKed: each ends at 64*T1 after its 2xx (read meanwhile: the BYEs come)
        received = _drain_for(client, 64 * T1 + 2.0)
        ended = [ln for ln in switch.log_lines if "no ACK for the 2xx" in ln]
        assert len(ended) == CALLS, f"{len(ended)} 'no ACK' lines for {CALLS} calls"
        cpu_before = _cpu_seconds(switch.proc.pid)
        time.sleep(2.0)
        busy = _cpu_seconds(switch.proc.pid) - cpu_before
        # the old code spun on the ended calls' timers (most of a core); idle is ~0
        assert busy < 0.5, f"{busy:.2f} s of CPU in 2 s with no call left"
        assert len([ln for ln in switch.log_lines if "no ACK for the 2xx" in ln]) == CALLS
        # each call ended with a BYE toward the caller
        byes = [m for m in (parse_message(r) for r in received + _drain_for(client, 0.5))
                if not isinstance(m, Response) and m.method == "BYE"]
        seen = {b.call_id for b in byes} & set(call_ids)
        # at suite size every BYE is seen; at thousands of calls this one Python socket
        # drops datagrams under the 2xx and BYE retransmissions (tens of thousands in 3 s),
        # so there the switch's log lines and call records above are the evidence
        if CALLS <= 200:
            assert len(seen) == CALLS, len(seen)
        # and the switch still serves a registration
        assert _register(client, switch.host) == 200
    finally:
        client.close()
        switch.stop()
    records = {r["call_id"]: r for r in call_records(switch.data_dir, limit=CALLS + 10)}
    for call_id in call_ids:
        assert records[call_id]["cause"] == "no ACK from the caller", records[call_id]
        assert records[call_id]["end"] is not None


def _ack(client: UdpClient, host: str, final: Response) -> bytes:
    """The ACK of a non-2xx final response (RFC 3261 17.1.1.3): same branch as the INVITE."""
    return (
        f"ACK sip:*43@{host} SIP/2.0\r\n"
        f"Via: {final.headers.get('Via')}\r\nMax-Forwards: 70\r\n"
        f"From: {final.headers.get('From')}\r\nTo: {final.headers.get('To')}\r\n"
        f"Call-ID: {final.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _drain_for(client: UdpClient, seconds: float) -> list[bytes]:
    out: list[bytes] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        raw = client.recv_maybe(0.1)
        if raw is not None:
            out.append(raw)
    return out


def _register(client: UdpClient, host: str) -> int:
    call_id = f"reg-{secrets.token_hex(4)}"

    def request(cseq: int, auth: str | None) -> bytes:
        return (
            f"REGISTER sip:{host} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bKr{call_id}{cseq}"
            ";rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:501411@{host}>;tag=r\r\nTo: <sip:501411@{host}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:501411@127.0.0.1:{client.local_port}>\r\nExpires: 60\r\n"
            + (f"Authorization: {auth}\r\n" if auth else "") + "Content-Length: 0\r\n\r\n"
        ).encode()

    client.send(request(1, None))
    first = next(r for r in _responses(client, 20, 5) if r.call_id == call_id and r.status >= 200)
    assert first.status == 401
    auth = authorization(first.headers.get_all("WWW-Authenticate"), method="REGISTER",
                         uri=f"sip:{host}", username="501411", password="demo-501411")
    client.send(request(2, auth))
    final = next(r for r in _responses(client, 20, 5) if r.call_id == call_id and r.status >= 200)
    return final.status
