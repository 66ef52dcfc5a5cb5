"""The switch as a real process on loopback: OPTIONS, error answers, robustness, stop."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from switch.sip import parse_message
from tests.support.server import RunningSwitch, start_switch
from tests.support.sipclient import StreamClient, UdpClient, options_request


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("core"))
    yield running
    running.stop()


def test_logs_one_line_per_listening_socket(switch: RunningSwitch) -> None:
    lines = [ln for ln in switch.log_lines if "listening transport=" in ln]
    transports = [ln.split("transport=")[1].split()[0] for ln in lines]
    assert len(transports) == len(set(transports))  # one line per socket
    assert {"UDP", "TCP", "TLS", "HTTP"} <= set(transports)
    assert f"127.0.0.1:{switch.port}" in " ".join(lines)
    assert f"127.0.0.1:{switch.tls_port}" in " ".join(lines)


def test_options_over_udp_gets_200_with_capabilities_and_rport(switch: RunningSwitch) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        client.send(options_request(switch.host, switch.port, local_port=client.local_port))
        resp = client.recv()
    finally:
        client.close()
    assert resp.status == 200
    for name in ("Allow", "Accept", "Supported"):
        assert resp.headers.get(name), name
    assert "OPTIONS" in resp.headers.get("Allow", "")
    via = resp.top_via
    assert via.rport == client.local_port  # RFC 3581: the source port is filled in
    assert via.received == "127.0.0.1"
    assert resp.to.tag


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_options_over_stream_transports(switch: RunningSwitch, tls: bool) -> None:
    port = switch.tls_port if tls else switch.port
    client = StreamClient(switch.host, port, tls=tls)
    try:
        # two requests in one write, then one split across writes: framing must hold
        a = options_request(switch.host, port, "TLS" if tls else "TCP")
        b = options_request(switch.host, port, "TLS" if tls else "TCP")
        client.send(a + b)
        assert client.recv().status == 200
        assert client.recv().status == 200
        c = options_request(switch.host, port, "TLS" if tls else "TCP")
        client.send(c[:17])
        client.send(c[17:])
        assert client.recv().status == 200
        # RFC 5626 keep-alive: a double CRLF ping gets a CRLF pong
        client.send(b"\r\n\r\n")
        client.sock.settimeout(2)
        assert client.sock.recv(10) == b"\r\n"
    finally:
        client.close()


def test_retransmitted_request_gets_the_same_response(switch: RunningSwitch) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        req = options_request(switch.host, switch.port, local_port=client.local_port)
        client.send(req)
        first = client.recv()
        client.send(req)
        second = client.recv()
    finally:
        client.close()
    assert first.to.tag == second.to.tag  # absorbed by the server transaction


@pytest.mark.parametrize(
    ("method", "status"),
    [("FROBNICATE", 501), ("MESSAGE", 405)],  # SUBSCRIBE/PUBLISH are served (issue 17)
)
def test_unknown_and_unsupported_methods(switch: RunningSwitch, method: str, status: int) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        client.send(options_request(switch.host, switch.port, method=method,
                                    local_port=client.local_port))
        resp = client.recv()
    finally:
        client.close()
    assert resp.status == status
    assert "OPTIONS" in (resp.headers.get("Allow") or "")


@pytest.mark.parametrize("method", ["SUBSCRIBE", "PUBLISH"])
def test_subscribe_and_publish_without_event_are_489(switch: RunningSwitch, method: str) -> None:
    """RFC 6665 8.2.1: a request without an event package we serve answers 489."""
    client = UdpClient(switch.host, switch.port)
    try:
        client.send(options_request(switch.host, switch.port, method=method,
                                    local_port=client.local_port))
        resp = client.recv()
    finally:
        client.close()
    assert resp.status == 489
    assert "presence" in (resp.headers.get("Allow-Events") or "")


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda b: b.replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1), 505),
        (lambda b: b.replace(b"OPTIONS sip:", b"OPTIONS http:", 1), 416),
        (lambda b: b.replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"), 400),
        (lambda b: b.replace(b"Content-Length: 0", b"Content-Length: 99"), 400),
    ],
    ids=["version", "scheme", "max-forwards", "content-length"],
)
def test_bad_requests_get_their_status(switch: RunningSwitch, mangle: object, status: int) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        req = options_request(switch.host, switch.port, local_port=client.local_port)
        client.send(mangle(req))  # type: ignore[operator]
        data = client.recv_maybe(3.0)
    finally:
        client.close()
    assert data is not None, "no answer to a bad request"
    resp = parse_message(data)
    assert getattr(resp, "status", None) == status
    assert resp.headers.get("Warning")


def test_garbage_is_dropped_and_the_switch_keeps_serving(switch: RunningSwitch) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        for junk in (b"", b"\x00" * 100, b"INVITE", b"SIP/2.0 200 OK\r\n\r\n", bytes(range(256)) * 200):
            client.send(junk)
        client.send(options_request(switch.host, switch.port, local_port=client.local_port))
        assert client.recv().status == 200
    finally:
        client.close()
    # a TCP stream that breaks framing is closed, the listener stays
    s = socket.create_connection((switch.host, switch.port), timeout=3)
    s.sendall(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: banana\r\n\r\n")
    s.settimeout(3)
    assert s.recv(100) == b""
    s.close()
    assert switch.proc.poll() is None


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    running = start_switch(tmp_path)
    code = running.stop(signal.SIGTERM)
    assert code == 0
    assert any("stopped" in ln for ln in running.log_lines)


def test_required_extension_we_lack_gets_420(switch: RunningSwitch) -> None:
    client = UdpClient(switch.host, switch.port)
    try:
        client.send(options_request(switch.host, switch.port, local_port=client.local_port,
                                    extra="Require: 100rel, path\r\n"))
        resp = client.recv()
    finally:
        client.close()
    assert resp.status == 420  # RFC 3261 8.2.2.3
    assert resp.headers.get("Unsupported") == "100rel"
