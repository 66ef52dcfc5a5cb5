"""Helpers for the devices tests: build REGISTER requests from wire text."""

from __future__ import annotations

import hashlib

from switch.sip import Request, parse_message

REALM = "acme.example"


def register(*, user: str = "501410", contacts: list[str] | None = None,
             expires: int | None = None, call_id: str = "cid-1@phone", cseq: int = 1,
             extra: list[str] | None = None, to_user: str | None = None,
             ruri: str = f"sip:{REALM}") -> Request:
    lines = [
        f"REGISTER {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{REALM}>;tag=abc",
        f"To: <sip:{to_user or user}@{REALM}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: TestPhone/1.0",
    ]
    lines += [f"Contact: {c}" for c in (contacts or [])]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    lines += extra or []
    raw = "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
    msg = parse_message(raw.encode())
    assert isinstance(msg, Request)
    return msg


def h(algorithm: str, text: str) -> str:
    """H() of RFC 7616 section 3.4.1, computed here independently of devices.accounts."""
    if algorithm == "MD5":
        return hashlib.md5(text.encode()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()


def digest_response(*, algorithm: str, username: str, realm: str, password: str, method: str,
                    uri: str, nonce: str, nc: str, cnonce: str, qop: str = "auth") -> str:
    """RFC 7616 section 3.4.1: response = KD(H(A1), nonce:nc:cnonce:qop:H(A2))."""
    a1 = f"{username}:{realm}:{password}"
    a2 = f"{method}:{uri}"
    return h(algorithm, f"{h(algorithm, a1)}:{nonce}:{nc}:{cnonce}:{qop}:{h(algorithm, a2)}")


def parse_challenge(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    out: dict[str, str] = {}
    for part in value[len("Digest "):].split(","):
        k, _, v = part.strip().partition("=")
        out[k] = v.strip('"')
    return out
