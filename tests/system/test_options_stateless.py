"""The stateless OPTIONS answer against a running `wte serve` over real UDP (issue 21): the
same capabilities as before, the same bytes for a retransmission, no transaction kept, and
every request it is not sure of answered by the full path as before."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from switch.sip import Response, parse_message
from tests.support.server import RunningSwitch, start_switch
from tests.support.sipclient import UdpClient, options_request

TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("options"), env={"WTE_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


@pytest.fixture
def client(switch: RunningSwitch) -> Iterator[UdpClient]:
    c = UdpClient(switch.host, switch.port)
    yield c
    c.close()


def figures(switch: RunningSwitch) -> dict[str, object]:
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics.json")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def options_sent(switch: RunningSwitch) -> int:
    sip = figures(switch)["sip"]
    assert isinstance(sip, dict)
    return int(sip["requests"].get("OPTIONS", 0))


def transactions(switch: RunningSwitch) -> int:
    count = figures(switch)["transactions"]
    assert isinstance(count, int)
    return count


def ask(client: UdpClient, switch: RunningSwitch, extra: str = "",
        branch: str | None = None) -> tuple[bytes, Response]:
    client.send(options_request(switch.host, switch.port, local_port=client.local_port,
                                extra=extra, branch=branch))
    data = client.recv_maybe(3.0)
    assert data is not None, "no answer"
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return data, msg


def test_answer_carries_the_capabilities_and_rport(switch: RunningSwitch,
                                                   client: UdpClient) -> None:
    _, resp = ask(client, switch)
    assert resp.status == 200
    allow = resp.headers.get("Allow") or ""
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"} <= set(allow.split(", "))
    assert resp.headers.get("Accept") == "application/sdp, application/pidf+xml, multipart/mixed"
    assert resp.headers.get("Accept-Encoding") == "identity"
    assert resp.headers.get("Accept-Language") == "en, fr"
    assert resp.headers.get("Supported") == "path"
    assert (resp.top_via.received, resp.top_via.rport) == ("127.0.0.1", client.local_port)
    assert resp.to.tag


def test_a_retransmission_gets_the_same_bytes_and_no_transaction_is_kept(
        switch: RunningSwitch, client: UdpClient) -> None:
    before_txn, before_count = transactions(switch), options_sent(switch)
    answers = []
    for _ in range(10):
        req = options_request(switch.host, switch.port, local_port=client.local_port)
        client.send(req)
        first = client.recv_maybe(3.0)
        client.send(req)  # the retransmission (RFC 3261 8.2.7: the same answer)
        assert first is not None and client.recv_maybe(3.0) == first
        answers.append(first)
    assert len({parse_message(a).to.tag for a in answers}) == 10  # a tag per request
    assert options_sent(switch) - before_count == 20  # counted as before
    # the full path would keep 10 transactions for Timer J (32 s); none is kept here
    assert transactions(switch) <= before_txn
    # an OPTIONS the stateless path leaves to the full path keeps its transaction
    _, resp = ask(client, switch, extra="Require: no-such-extension\r\n")
    assert resp.status == 420  # RFC 3261 8.2.2.3
    assert resp.headers.get("Unsupported") == "no-such-extension"
    assert transactions(switch) >= before_txn + 1


def test_what_the_stateless_path_is_not_sure_of_is_answered_as_before(
        switch: RunningSwitch, client: UdpClient) -> None:
    _, resp = ask(client, switch, extra="Require: path\r\n")
    assert resp.status == 200
    # in a dialog: the To tag is the dialog's, kept
    tagged = options_request(switch.host, switch.port, local_port=client.local_port)
    tagged = tagged.replace(f"To: <sip:{switch.host}>\r\n".encode(),
                            f"To: <sip:{switch.host}>;tag=dlg42\r\n".encode())
    client.send(tagged)
    data = client.recv_maybe(3.0)
    assert data is not None
    resp2 = parse_message(data)
    assert isinstance(resp2, Response) and resp2.status == 200 and resp2.to.tag == "dlg42"
    # Max-Forwards 0: the full path answers (RFC 3261 16.3 item 3 lets it), as before
    zero = options_request(switch.host, switch.port, local_port=client.local_port).replace(
        b"Max-Forwards: 70", b"Max-Forwards: 0")
    client.send(zero)
    data = client.recv_maybe(3.0)
    assert data is not None and data.startswith(b"SIP/2.0 200 ")
    # a malformed request still gets its 400 (RFC 3261 8.2)
    bad = options_request(switch.host, switch.port, local_port=client.local_port).replace(
        b"Max-Forwards: 70", b"Max-Forwards: many")
    client.send(bad)
    data = client.recv_maybe(3.0)
    assert data is not None and data.startswith(b"SIP/2.0 400 ")
