"""A tiny raw SIP client over real sockets, for tests that need exact bytes on the wire."""

from __future__ import annotations

import secrets
import socket
import ssl

from switch.sip import Response, StreamFramer, parse_message


def options_request(host: str, port: int, transport: str = "UDP", *, local_port: int = 5999,
                    method: str = "OPTIONS", extra: str = "", branch: str | None = None,
                    call_id: str | None = None) -> bytes:
    branch = branch or "z9hG4bK" + secrets.token_hex(6)
    call_id = call_id or secrets.token_hex(8)
    return (
        f"{method} sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:tester@{host}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{host}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class UdpClient:
    def __init__(self, host: str, port: int, timeout: float = 3.0) -> None:
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.local_port = int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.addr)

    def recv(self) -> Response:
        data, _ = self.sock.recvfrom(65535)
        msg = parse_message(data)
        assert isinstance(msg, Response), msg
        return msg

    def recv_maybe(self, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recvfrom(65535)[0]
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


class StreamClient:
    def __init__(self, host: str, port: int, *, tls: bool = False, timeout: float = 3.0) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            raw = ctx.wrap_socket(raw, server_hostname=host)
        self.sock = raw
        self.local_port = int(raw.getsockname()[1])
        self.framer = StreamFramer()
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_frame(self) -> bytes:
        while not self.pending:
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("closed")
            self.pending.extend(self.framer.feed(chunk))
        return self.pending.pop(0)

    def recv(self) -> Response:
        frame = self.recv_frame()
        msg = parse_message(frame)
        assert isinstance(msg, Response), msg
        return msg

    def close(self) -> None:
        self.sock.close()
