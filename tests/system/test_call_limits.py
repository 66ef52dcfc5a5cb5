"""Per-account call limits over real SIP (issue 20 item 4): the toll-fraud pattern of one
account opening call after call to the carrier is stopped at its limit with a 403, while
other users' calls and the account's own emergency calls still go out."""

from __future__ import annotations

import secrets
import urllib.request
from collections.abc import Iterator

import pytest

from scenarios.digest_client import authorization
from switch.sip import Request, Response, make_response, parse_message
from tests.support.carrier import Carrier
from tests.support.server import RunningSwitch, config_with, start_switch, wait_record
from tests.support.sipclient import UdpClient

LIMIT = 2
TOKEN = "limits-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSwitch, Carrier]]:
    tmp = tmp_path_factory.mktemp("limits")
    carrier = Carrier()
    config = config_with(tmp, {"calls.ring_timeout": 30,
                               "calls.limits.account_concurrent": LIMIT,
                               "auth.max_failures": 10000},
                         carrier_port=carrier.port)
    switch = start_switch(tmp / "var", config=config, env={"WTE_ADMIN_TOKEN": TOKEN})
    yield switch, carrier
    switch.stop()
    carrier.close()


def invite_as(switch: RunningSwitch, user: str, number: str) -> tuple[UdpClient, str]:
    """An authenticated INVITE (no SDP) from `user` to `number`; returns the client and its
    Call-ID once the challenged INVITE has been answered with credentials."""
    client = UdpClient(switch.host, switch.port)
    call_id = f"limit-{secrets.token_hex(6)}"
    ruri = f"sip:{number}@{switch.host}"

    def send(auth: str | None, cseq: int) -> None:
        client.send((
            f"INVITE {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bK{call_id}{cseq};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@{switch.host}>;tag=t{cseq}\r\n"
            f"To: <{ruri}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n"
            f"Contact: <sip:{user}@127.0.0.1:{client.local_port}>\r\n"
            + (f"Proxy-Authorization: {auth}\r\n" if auth else "")
            + "Content-Length: 0\r\n\r\n").encode())

    send(None, 1)
    challenge = final(client, call_id, cseq=1)
    assert challenge.status == 407, challenge
    # ACK the 407 (RFC 3261 17.1.1.3) so it is not retransmitted
    client.send((
        f"ACK {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.local_port};branch=z9hG4bK{call_id}1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{user}@{switch.host}>;tag=t1\r\n"
        f"To: {challenge.headers.get('To')}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n").encode())
    auth = authorization(challenge.headers.get_all("Proxy-Authenticate"), method="INVITE",
                         uri=ruri, username=user, password=f"demo-{user}")
    send(auth, 2)
    return client, call_id


def final(client: UdpClient, call_id: str, cseq: int = 2, timeout: float = 5.0) -> Response:
    while True:
        raw = client.recv_maybe(timeout)
        assert raw is not None, f"no final response for {call_id}"
        msg = parse_message(raw)
        if (isinstance(msg, Response) and msg.call_id == call_id and msg.cseq.seq == cseq
                and msg.status >= 200):
            return msg


def carrier_rings(carrier: Carrier, seen: set[str]) -> Request:
    """The next new INVITE at the carrier, kept ringing (a 180 stops retransmissions)."""
    while True:
        req, src = carrier.expect_request("INVITE", timeout=5.0)
        if req.call_id in seen:
            continue
        seen.add(req.call_id)
        carrier.sock.sendto(make_response(req, 180, to_tag="c" + secrets.token_hex(3))
                            .to_bytes(), src)
        return req


def test_an_account_over_its_limit_gets_403_others_and_112_go_through(
        setup: tuple[RunningSwitch, Carrier]) -> None:
    switch, carrier = setup
    seen: set[str] = set()
    clients: list[UdpClient] = []
    try:
        for i in range(LIMIT):
            client, _ = invite_as(switch, "501410", f"061234567{i}")
            clients.append(client)
            assert "+3361234567" in str(carrier_rings(carrier, seen).uri)
        over, over_id = invite_as(switch, "501410", "0612345679")
        clients.append(over)
        try:
            refused = final(over, over_id)
        except AssertionError:
            raise AssertionError(switch.log_text()[-3000:]) from None
        assert refused.status == 403
        assert "account concurrent calls" in (refused.headers.get("Warning") or "")
        # another user of the same customer is not affected
        other, _ = invite_as(switch, "502411", "0612345670")
        clients.append(other)
        assert "+33612345670" in str(carrier_rings(carrier, seen).uri)
        # the limited account can still reach the emergency services
        sos, _ = invite_as(switch, "501410", "112")
        clients.append(sos)
        assert str(carrier_rings(carrier, seen).uri).startswith("sip:112@")
    finally:
        for client in clients:
            client.close()
    record = wait_record(switch.data_dir, lambda r: r["call_id"] == over_id)
    assert record["status"] == 403 and record["caller"] == "501410"
    assert record["disposition"] == "refused"
    text = switch.log_text()
    assert text.count("call limit alert user=501410") == 1, text[-2000:]


def test_metrics_describe_every_series_and_count_the_refusals(
        setup: tuple[RunningSwitch, Carrier]) -> None:
    """/metrics (issue 24): a HELP and a TYPE line per family; the call-limit refusals,
    connection caps and relay drops are exposed (after the test above: one refusal)."""
    switch, _ = setup
    req = urllib.request.Request(f"http://{switch.host}:{switch.http_port}/metrics")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        text = resp.read().decode()
    families = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE ")]
    helped = {ln.split()[2] for ln in text.splitlines() if ln.startswith("# HELP ")}
    assert families and set(families) == helped
    assert "wte_call_limit_refusals_total 1" in text.splitlines()
    # the calls of the test above: two, one refused, 502411's, 112, all for the carrier
    attempts = next(ln for ln in text.splitlines()
                    if ln.startswith('wte_trunk_call_attempts_total{trunk="carrier"}'))
    assert int(attempts.split()[-1]) >= 4
    pairs = next(ln for ln in text.splitlines() if ln.startswith("wte_rtp_port_pairs "))
    assert int(pairs.split()[-1]) > 1000
    for series in ("wte_auth_failures_total", "wte_records_queue_depth",
                   "wte_rtp_port_pairs_in_use",
                   'wte_stream_refused_total{cap="per_source"}',
                   'wte_rtp_dropped_total{reason="foreign"}', "wte_stream_connections"):
        assert series in text, series
