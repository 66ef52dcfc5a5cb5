"""Hostile input against the running switch: malformed and mutated SIP over UDP and TCP.

The switch must answer what it can with a 4xx, drop the rest and count it, and never stop
or raise in a handler (the bar: bad input gets a clear answer and loses nothing)."""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.server import RunningSwitch, start_switch
from tests.support.sipclient import UdpClient, options_request

TOKEN = "test-admin-token"
SEEDS = [
    b"INVITE sip:501411@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4999;branch=z9hG4bKx;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: \"A\" <sip:501410@127.0.0.1>;tag=1\r\nTo: <sip:501411@127.0.0.1>\r\n"
    b"Call-ID: fuzz@x\r\nCSeq: 1 INVITE\r\nContact: <sip:501410@127.0.0.1:4999>\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 53\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n",
    b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4999;branch=z9hG4bKr;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:501410@127.0.0.1>;tag=2\r\nTo: <sip:501410@127.0.0.1>\r\n"
    b"Call-ID: fuzzreg@x\r\nCSeq: 1 REGISTER\r\nContact: <sip:501410@127.0.0.1:4999>;expires=60\r\n"
    b"Authorization: Digest username=\"501410\", realm=\"acme.wte.example\", nonce=\"x\", "
    b"uri=\"sip:127.0.0.1\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnope\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        pos = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[pos] = rng.randrange(256)
        elif op == 1:
            b[pos:pos] = bytes(rng.choice(b";:<>\",@ \r\n\\%=") for _ in range(rng.randint(1, 8)))
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 20)]
        elif op == 3:
            b[pos:pos] = b[rng.randrange(len(b)):][: rng.randint(1, 200)]
        else:
            b[pos:pos] = rng.choice([b"\r\n", b"\r\n ", b"SIP/2.0", b";;;;", b"\x00", b"%%", b"\xff"])
    return bytes(b)


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("hostile"), env={"WTE_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


def metrics(switch: RunningSwitch) -> dict[str, object]:
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics.json")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_metrics_need_the_admin_token(switch: RunningSwitch) -> None:
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics")
    req.add_header("Authorization", "Bearer wrong")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 403


def test_mutated_datagrams_and_streams_never_break_the_switch(switch: RunningSwitch) -> None:
    rng = random.Random(20261126)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        for i in range(1500):
            sock.sendto(mutate(rng, rng.choice(SEEDS)), (switch.host, switch.port))
            if i % 100 == 0:
                time.sleep(0.02)  # stay within the socket buffer, keep it bounded
        for _ in range(30):
            with socket.create_connection((switch.host, switch.port), timeout=3) as s:
                s.sendall(b"".join(mutate(rng, rng.choice(SEEDS)) for _ in range(5)))
    finally:
        sock.close()
    time.sleep(1.0)
    client = UdpClient(switch.host, switch.port)
    try:
        client.send(options_request(switch.host, switch.port, local_port=client.local_port))
        assert client.recv().status == 200
    finally:
        client.close()
    m = metrics(switch)
    sip = m["sip"]
    assert isinstance(sip, dict)
    assert sip["handler_errors"] == 0, m
    assert sip["dropped"] > 0  # unparseable input was counted
    assert any(int(k) // 100 == 4 for k in sip["responses_sent"])  # and answered with 4xx
    assert switch.proc.poll() is None
    assert not any("Traceback" in ln for ln in switch.log_lines), switch.log_text()[-3000:]
    # the same counters for Prometheus
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        text = resp.read().decode()
    assert f"wte_sip_dropped_total {sip['dropped']}" in text
    assert 'wte_sip_requests_total{method="OPTIONS"}' in text
    # issue 21: hostile input is not an overload; the shedding counters are there, at zero
    assert sip["overload"] == {"shed_503": 0, "dropped_late": 0,
                               "max_queue_delay_ms": sip["overload"]["max_queue_delay_ms"]}
    assert 'wte_sip_overload_total{action="503"} 0' in text
