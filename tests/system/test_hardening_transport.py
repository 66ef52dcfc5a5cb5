"""Issue 20.3 (connection exhaustion) and 20.8 (TLS errors isolated), reproduced.

The attack: thousands of TCP connections that are opened and left idle (or send one
request and then idle, or trickle a header byte by byte, or never finish a TLS handshake)
hold the switch's file descriptors until no phone can connect.  Now connections are capped
per source address and in all, and deadlines close the ones that do not speak SIP.

The in-process tests drive `StreamTransports` with short limits over real sockets on
127.0.0.0/8 (the attacker binds 127.0.0.2, the phone 127.0.0.1); the system test runs the
real switch with its defaults against 2,300 idle connections and a pjsua2 phone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest

from switch.transaction import Peer
from switch.transport.limits import (
    Admission,
    ConnPhase,
    StreamLimits,
    Throttle,
    expiry,
    raise_nofile_limit,
)
from switch.transport.stream import StreamTransports
from switch.transport.tls import ensure_self_signed, server_context, server_context_or_none
from tests.support.pjphone import make_phone
from tests.support.server import RunningSwitch, config_with, start_switch
from tests.support.sipclient import options_request

ATTACKER = "127.0.0.2"
PHONE = "127.0.0.1"


# --- the policy, with time passed in -----------------------------------------------------------
def test_expiry_per_phase() -> None:
    lim = StreamLimits(handshake_timeout=5, first_message_timeout=7, message_timeout=3,
                       idle_unregistered=60, idle_timeout=900)
    assert expiry(lim, ConnPhase.SILENT, 100.0, 150.0, None)[0] == 107.0
    assert expiry(lim, ConnPhase.ACTIVE, 100.0, 150.0, None) == (210.0, "idle")
    assert expiry(lim, ConnPhase.REGISTERED, 100.0, 150.0, None) == (1050.0, "idle")
    # a slowloris keeps last_activity fresh; the incomplete message still has 3 s
    assert expiry(lim, ConnPhase.REGISTERED, 100.0, 299.0, 200.0) == (203.0,
                                                                      "incomplete message")


def test_admission_caps_per_source_and_overall() -> None:
    adm = Admission(StreamLimits(max_per_source=2, max_connections=3))
    assert adm.admit("a") is None and adm.admit("a") is None
    assert adm.admit("a") is not None and adm.refused_per_source == 1
    assert adm.admit("b") is None
    assert "cap 3" in str(adm.admit("c")) and adm.refused_overall == 1
    adm.release("a")
    assert adm.admit("c") is None and adm.total == 3


def test_throttle_logs_once_per_period() -> None:
    t = Throttle(10.0)
    assert t.ready(0.0) == 0
    assert [t.ready(x) for x in (1.0, 2.0, 3.0)] == [None, None, None]
    assert t.ready(10.5) == 3


def test_nofile_soft_limit_is_raised_to_the_hard_limit() -> None:
    import resource

    soft, hard = raise_nofile_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
    assert hard == resource.RLIM_INFINITY or soft == hard


# --- StreamTransports over real sockets, short limits ----------------------------------------
class Listener:
    def __init__(self, limits: StreamLimits) -> None:
        self.got: list[tuple[bytes, Peer]] = []
        self.streams = StreamTransports(lambda data, peer: self.got.append((data, peer)),
                                        limits=limits)
        self.port = 0
        self.tls_port = 0


@pytest.fixture
async def listen(tmp_path: Path) -> AsyncIterator[Any]:
    """`await listen(**limits)`: TCP and TLS listeners on 127.0.0.1 with those limits."""
    made: list[Listener] = []

    async def start(**limits: Any) -> Listener:
        lst = Listener(StreamLimits(**limits))
        lst.port = await lst.streams.listen("TCP", "127.0.0.1", 0)
        cert, key = ensure_self_signed(tmp_path, "127.0.0.1")
        lst.tls_port = await lst.streams.listen("TLS", "127.0.0.1", 0,
                                                server_context(cert, key))
        made.append(lst)
        return lst

    yield start
    for lst in made:
        await lst.streams.close()


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True if the server closed (EOF or reset) within `within` seconds."""
    try:
        data = await asyncio.wait_for(reader.read(65535), within)
    except TimeoutError:
        return False
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True
    return data == b""


async def _until(cond: Any, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return bool(cond())


async def test_per_source_cap_refuses_the_attacker_not_the_phone(listen: Any) -> None:
    listener = await listen(max_per_source=5, max_connections=100)
    conns = [await _connect(listener.port, ATTACKER) for _ in range(8)]
    closed = await asyncio.gather(*(_closed_by_server(r, 1.0) for r, _w in conns))
    assert sum(closed) == 3 and not any(closed[:5])  # the first five are kept, idle
    counters = listener.streams.counters()
    assert counters["stream_refused_per_source"] == 3 and counters["stream_connections"] == 5
    # a phone on another source still connects and is heard
    r, w = await _connect(listener.port, PHONE)
    w.write(options_request("127.0.0.1", listener.port, "TCP"))
    assert await _until(lambda: len(listener.got) == 1)
    assert listener.got[0][1].host == PHONE
    for _r, w2 in [*conns, (r, w)]:
        w2.close()


async def test_overall_cap(listen: Any) -> None:
    listener = await listen(max_per_source=50, max_connections=6)
    conns = [await _connect(listener.port, f"127.0.0.{10 + i}") for i in range(8)]
    closed = await asyncio.gather(*(_closed_by_server(r, 1.0) for r, _w in conns))
    assert sum(closed) == 2 and listener.streams.counters()["stream_refused_overall"] == 2
    for _r, w in conns:
        w.close()
    # slots come back when connections close
    assert await _until(lambda: listener.streams.admission.total == 0)
    r, w = await _connect(listener.port, ATTACKER)
    assert not await _closed_by_server(r, 0.2)
    w.close()


async def test_silent_connection_closed_at_the_first_message_deadline(listen: Any) -> None:
    listener = await listen(first_message_timeout=0.3)
    r, w = await _connect(listener.port, ATTACKER)
    assert await _closed_by_server(r, 5.0)
    assert listener.streams.counters()["stream_expired_no_complete_sip_message"] == 1
    w.close()


async def test_tls_handshake_never_started_is_closed(listen: Any) -> None:
    listener = await listen(handshake_timeout=0.3)
    r, w = await _connect(listener.tls_port, ATTACKER)  # plain TCP: no ClientHello ever
    assert await _closed_by_server(r, 5.0)
    assert await _until(lambda: listener.streams.admission.total == 0)
    w.close()


async def test_pending_tls_handshakes_count_against_the_cap(listen: Any) -> None:
    listener = await listen(max_per_source=3, handshake_timeout=5.0)
    conns = [await _connect(listener.tls_port, ATTACKER) for _ in range(4)]
    closed = await asyncio.gather(*(_closed_by_server(r, 0.5) for r, _w in conns))
    assert closed == [False, False, False, True]
    for _r, w in conns:
        w.close()


async def test_slowloris_header_is_cut_at_the_message_deadline(listen: Any) -> None:
    listener = await listen(message_timeout=0.4, first_message_timeout=30.0)
    r, w = await _connect(listener.port, ATTACKER)
    w.write(options_request("127.0.0.1", listener.port, "TCP"))  # a valid first request
    assert await _until(lambda: len(listener.got) == 1)
    trickle = options_request("127.0.0.1", listener.port, "TCP")
    closed = False
    for byte in trickle[:200]:  # one byte every 20 ms: activity, but never a full header
        try:
            w.write(bytes([byte]))
            await w.drain()
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        await asyncio.sleep(0.02)
    assert closed or await _closed_by_server(r, 2.0)
    assert listener.streams.counters()["stream_expired_incomplete_message"] == 1
    assert len(listener.got) == 1


async def test_a_connection_with_an_accepted_register_is_kept(listen: Any) -> None:
    listener = await listen(idle_unregistered=0.3, idle_timeout=30.0)
    r1, w1 = await _connect(listener.port, PHONE)
    r2, w2 = await _connect(listener.port, PHONE)
    for w in (w1, w2):
        w.write(options_request("127.0.0.1", listener.port, "TCP", method="REGISTER"))
    assert await _until(lambda: len(listener.got) == 2)
    # the registrar answers 200 on the first connection only (the second one failed auth)
    peer = listener.got[0][1]
    ok = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP x\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\n"
          b"Content-Length: 0\r\n\r\n")
    assert listener.streams.send(ok, peer)
    assert (await r1.readuntil(b"\r\n\r\n")).startswith(b"SIP/2.0 200")
    closed_other = listener.got[1][1]
    assert await _closed_by_server(r2, 3.0)  # idle, no registration: closed
    assert not await _closed_by_server(r1, 0.6)  # the registered phone's path stays
    assert listener.streams.find(peer) is not None
    assert listener.streams.find(closed_other) is None
    w1.close()
    w2.close()


async def test_tls_still_works(listen: Any) -> None:
    listener = await listen(handshake_timeout=2.0)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _r, w = await asyncio.open_connection("127.0.0.1", listener.tls_port, ssl=ctx)
    w.write(options_request("127.0.0.1", listener.tls_port, "TLS"))
    assert await _until(lambda: len(listener.got) == 1)
    assert listener.got[0][1].transport == "TLS"
    w.close()


# --- TLS certificate errors are isolated (issue 20.8) -----------------------------------------
def test_bad_tls_files_give_none_and_one_line_naming_the_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cert, key = ensure_self_signed(tmp_path / "good", "127.0.0.1")
    other_cert, other_key = ensure_self_signed(tmp_path / "other", "127.0.0.1")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    missing = tmp_path / "missing.pem"
    cases = [(missing, key, missing), (garbage, key, garbage), (cert, garbage, garbage),
             (cert, other_key, other_key)]
    for c, k, named in cases:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="switch.transport.tls"):
            assert server_context_or_none(c, k, data_dir=tmp_path, host="127.0.0.1") is None
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and str(named) in lines[0] and "\n" not in lines[0], lines
    assert server_context_or_none(cert, key, data_dir=tmp_path, host="127.0.0.1") is not None
    assert server_context_or_none(None, None, data_dir=tmp_path, host="127.0.0.1") is not None
    assert other_cert.exists()


# --- the real switch: 2,300 idle connections, a pjsua2 phone on another source ---------------
@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("conn-flood")
    running = start_switch(tmp, config=config_with(tmp, {"calls.ring_timeout": 3}))
    yield running
    running.stop()


# The attacker runs in its own process: pjsua2 polls its sockets with select(), which cannot
# watch a descriptor above 1024, so the test process must not hold the 2,300 sockets itself.
_ATTACKER = r"""
import json, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])

def open_many(source, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(5.0)
        s.connect((host, port))
        socks.append(s)
    return socks

def closed(socks):
    out = []
    for s in socks:
        s.setblocking(False)
        try:
            out.append(s.recv(1, socket.MSG_PEEK) == b"")
        except BlockingIOError:
            out.append(False)
        except OSError:
            out.append(True)
        s.settimeout(5.0)
    return out

def options(p):
    return (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/TCP {p}:5999;branch=z9hG4bK{time.time_ns()};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:t@{host}>;tag=1\r\nTo: <sip:{host}>\r\n"
            f"Call-ID: {time.time_ns()}@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()

flood = open_many("127.0.0.2", 300)
time.sleep(1.0)
c = closed(flood)
answered = 0
active = []
for i in range(10):
    batch = open_many(f"127.0.0.{3 + i}", 200)
    active += batch
    for s in batch:
        s.sendall(options(f"127.0.0.{3 + i}"))
    for s in batch:
        answered += s.recv(65535).startswith(b"SIP/2.0 200")
print(json.dumps({"refused": sum(c), "first_256_closed": sum(c[:256]), "answered": answered}),
      flush=True)
sys.stdin.readline()  # the phone's turn; then: still open?
still = closed(flood[:256] + active)
print(json.dumps({"closed_later": sum(still), "held": len(still)}), flush=True)
"""


def test_idle_connection_flood_does_not_stop_a_phone(pj_lib: Any,
                                                     switch: RunningSwitch) -> None:
    port = switch.port
    attacker = subprocess.Popen([sys.executable, "-c", _ATTACKER, switch.host, str(port)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert attacker.stdout is not None and attacker.stdin is not None
        first = json.loads(attacker.stdout.readline())
        # 300 silent connections from one source: 256 held (the per-source cap), 44 reset;
        # 2,000 more from 10 other sources after one valid request each, all answered
        assert first == {"refused": 44, "first_256_closed": 0, "answered": 2000}, first
        # a phone from 127.0.0.1 registers over TCP and calls a phone registered over UDP
        caller = make_phone(pj_lib, transport="TCP", user="502411", host=switch.host,
                            port=port, password="demo-502411", register=True)
        callee = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                            port=port, password="demo-501410", register=True)
        try:
            for p in (caller, callee):
                assert p.wait_registration(lambda e: e[0] == 200, since=0) is not None, \
                    switch.log_text()[-2000:]
            callee.account.answer_with = 200
            call = caller.call(f"sip:501410@{switch.host}:{port}")
            assert pj_lib.wait_until(
                lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, 8), (
                call.states, call.last_status, switch.log_text()[-2000:])
            call.hangup(pj.CallOpParam(True))
            assert pj_lib.wait_until(
                lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
        finally:
            pj_lib.ep.hangupAllCalls()
            pj_lib.wait_until(lambda: False, 0.3)
            caller.shutdown()
            callee.shutdown()
        # the attack connections were all still open meanwhile: the phone needed no room made
        attacker.stdin.write("\n")
        attacker.stdin.flush()
        later = json.loads(attacker.stdout.readline())
        assert later == {"closed_later": 0, "held": 2256}, later
        log = switch.log_text()
        assert "refusing TCP connection from 127.0.0.2" in log
        assert log.count("refusing TCP connection") <= 2  # throttled, not one line each
    finally:
        attacker.kill()
        attacker.wait(10)
