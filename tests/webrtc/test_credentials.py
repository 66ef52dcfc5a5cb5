"""Short-lived SIP passwords for browsers: issue, expiry, WS/WSS only."""

from __future__ import annotations

import pytest

from devices.accounts import StaticAccountDirectory, make_account
from devices.digest import AuthOutcome, DigestAuthenticator, parse_auth_params
from scenarios.digest_client import authorization
from switch.sip import Request, parse_message
from switch.webrtc.credentials import EphemeralCredentials, verify_digest

REALM = "acme.example"
SECRET = b"0123456789abcdef-secret"
DIRECTORY = StaticAccountDirectory([make_account("501410", REALM, "sip-password",
                                                 "acme:501410")])


def register(password: str, digest: DigestAuthenticator, now: float) -> Request:
    uri = "sip:acme.example"
    nonce = digest.challenge_headers(REALM, now)[0][1]
    creds = authorization([nonce], method="REGISTER", uri=uri, username="501410",
                          password=password)
    assert creds is not None
    text = (f"REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n"
            f"From: <sip:501410@acme.example>;tag=1\r\nTo: <sip:501410@acme.example>\r\n"
            f"Call-ID: c1\r\nCSeq: 2 REGISTER\r\nAuthorization: {creds}\r\n"
            "Content-Length: 0\r\n\r\n")
    req = parse_message(text.encode())
    assert isinstance(req, Request)
    return req


def test_expiry_is_aligned_and_between_one_and_two_ttl() -> None:
    creds = EphemeralCredentials(SECRET, ttl=600)
    for now in (1_000_000.0, 1_000_599.0, 1_000_200.5):
        issued = creds.issue("501410", REALM, now)
        assert issued.expires % 600 == 0
        assert 600 <= issued.expires - now <= 1200
        assert issued.expires in creds.candidates(now)


def test_password_depends_on_user_realm_expiry_and_secret() -> None:
    a = EphemeralCredentials(SECRET)
    b = EphemeralCredentials(b"another-secret-0123456789")
    base = a.password("501410", REALM, 1200)
    assert base != a.password("501411", REALM, 1200)
    assert base != a.password("501410", "other", 1200)
    assert base != a.password("501410", REALM, 1800)
    assert base != b.password("501410", REALM, 1200)
    assert len(base) == 32


def test_short_secrets_and_ttls_are_refused() -> None:
    with pytest.raises(ValueError):
        EphemeralCredentials(b"short")
    with pytest.raises(ValueError):
        EphemeralCredentials(SECRET, ttl=10)


@pytest.mark.parametrize(("transport", "later", "outcome"), [
    ("WS", 0.0, AuthOutcome.OK),
    ("WSS", 500.0, AuthOutcome.OK),
    ("UDP", 0.0, AuthOutcome.FAILED),  # never over a desk phone's transports
    ("TLS", 0.0, AuthOutcome.FAILED),
    ("WS", 1300.0, AuthOutcome.FAILED),  # expired
])
def test_verify_accepts_the_short_lived_password_only_over_websocket_and_in_time(
        transport: str, later: float, outcome: AuthOutcome) -> None:
    creds = EphemeralCredentials(SECRET, ttl=600)
    now = 1_000_000.0
    issued = creds.issue("501410", REALM, now)
    digest = DigestAuthenticator(b"nonce-secret-0123456789", nonce_ttl=1e6)
    req = register(issued.password, digest, now + later)
    result = verify_digest(digest, req, REALM, DIRECTORY, now + later, transport=transport,
                           ephemeral=creds)
    assert result.outcome is outcome
    if outcome is AuthOutcome.OK:
        assert result.account is not None and result.account.aor == "acme:501410"


def test_the_sip_password_still_works_over_websocket() -> None:
    creds = EphemeralCredentials(SECRET)
    digest = DigestAuthenticator(b"nonce-secret-0123456789")
    req = register("sip-password", digest, 1000.0)
    result = verify_digest(digest, req, REALM, DIRECTORY, 1000.0, transport="WS",
                           ephemeral=creds)
    assert result.outcome is AuthOutcome.OK
    assert parse_auth_params(req.headers.get("Authorization") or "")[0] == "digest"
