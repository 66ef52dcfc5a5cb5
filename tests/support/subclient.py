"""A raw UDP SIP subscriber with digest (RFC 6665 / RFC 7616 MD5, qop=auth), for tests and
the subscription benchmark: SUBSCRIBE (challenged once, then with credentials), answer each
NOTIFY with 200 OK and keep its bodies."""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import time
from dataclasses import dataclass, field

from switch.sip import Request, Response, parse_message


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_header(challenge: str, *, user: str, password: str, method: str, uri: str,
                  header: str = "Proxy-Authorization") -> tuple[str, str]:
    """The credentials answering a `Digest realm=..., nonce=...` challenge (RFC 7616 MD5)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    cnonce, nc = secrets.token_hex(4), "00000001"
    if "auth" in params.get("qop", ""):
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    opaque = f', opaque="{params["opaque"]}"' if "opaque" in params else ""
    return header, (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", '
                    f'uri="{uri}", response="{response}", algorithm=MD5{extra}{opaque}')


@dataclass
class Notify:
    event: str
    state: str
    body: str
    cseq: int


@dataclass
class Subscriber:
    """One watcher on its own UDP socket (127.0.0.1, a free port)."""

    user: str
    password: str
    switch_host: str
    switch_port: int
    domain: str = "127.0.0.1"
    sock: socket.socket = field(init=False)
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    to_tag: str | None = None
    cseq: int = 0
    notifies: list[Notify] = field(default_factory=list)
    target: str = ""
    event: str = ""

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def _request(self, target: str, event: str, expires: int,
                 auth: tuple[str, str] | None) -> bytes:
        self.cseq += 1
        uri = f"sip:{target}@{self.switch_host}:{self.switch_port}"
        to = f"<sip:{target}@{self.domain}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        lines = [
            f"SUBSCRIBE {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.domain}>;tag={self.from_tag}",
            f"To: {to}", f"Call-ID: {self.call_id}", f"CSeq: {self.cseq} SUBSCRIBE",
            f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
            f"Event: {event}", f"Expires: {expires}",
        ]
        if auth is not None:
            lines.append(f"{auth[0]}: {auth[1]}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    def subscribe(self, target: str, event: str = "dialog", expires: int = 600,
                  timeout: float = 3.0) -> Response:
        """SUBSCRIBE (answering one 407 challenge); the final response. NOTIFYs that
        arrive meanwhile are answered and kept."""
        self.target, self.event = target, event
        uri = f"sip:{target}@{self.switch_host}:{self.switch_port}"
        self.sock.sendto(self._request(target, event, expires, None),
                         (self.switch_host, self.switch_port))
        resp = self._final(timeout)
        if resp.status in (401, 407):
            name = "Proxy-Authenticate" if resp.status == 407 else "WWW-Authenticate"
            header = "Proxy-Authorization" if resp.status == 407 else "Authorization"
            auth = digest_header(resp.headers.get(name) or "", user=self.user,
                                 password=self.password, method="SUBSCRIBE", uri=uri,
                                 header=header)
            self.sock.sendto(self._request(target, event, expires, auth),
                             (self.switch_host, self.switch_port))
            resp = self._final(timeout)
        if resp.status == 200 and self.to_tag is None:
            self.to_tag = resp.to.tag
        return resp

    def _final(self, timeout: float) -> Response:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self._recv(end - time.monotonic())
            if isinstance(msg, Response) and msg.status >= 200:
                return msg
        raise TimeoutError("no final response")

    def _recv(self, timeout: float) -> Request | Response | None:
        self.sock.settimeout(max(0.001, timeout))
        try:
            data, addr = self.sock.recvfrom(65535)
        except (TimeoutError, BlockingIOError):
            return None
        msg = parse_message(data)
        if isinstance(msg, Request):
            self._answer(msg, data, addr)
        return msg

    def _answer(self, req: Request, data: bytes, addr: tuple[str, int]) -> None:
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        keep = [ln for ln in head.split("\r\n")[1:]
                if ln.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id",
                                                           "cseq", "v", "f", "t", "i")]
        reply = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        self.sock.sendto(reply.encode(), addr)
        if req.method == "NOTIFY":
            self.notifies.append(Notify(req.headers.get("Event") or "",
                                        req.headers.get("Subscription-State") or "",
                                        req.body.decode(errors="replace"), req.cseq.seq))

    def pump(self, seconds: float) -> None:
        """Answer whatever arrives for `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._recv(end - time.monotonic())

    def wait_notify(self, predicate: object, timeout: float = 5.0,
                    since: int = 0) -> Notify | None:
        end = time.monotonic() + timeout
        while True:
            for n in self.notifies[since:]:
                if predicate(n):  # type: ignore[operator]
                    return n
            if time.monotonic() > end:
                return None
            self._recv(min(0.1, max(0.001, end - time.monotonic())))
