"""Digest authentication (RFC 7616, RFC 8760): responses computed independently here."""

from __future__ import annotations

import pytest
from devices_helpers import REALM, digest_response, parse_challenge, register

from devices.accounts import StaticAccountDirectory, ha1, make_account
from devices.digest import AuthOutcome, DigestAuthenticator, parse_auth_params
from switch.sip import Request

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000.0
ALICE = make_account("501410", REALM, "s3cret", "acme:501410")
DIRECTORY = StaticAccountDirectory([ALICE])


def auth() -> DigestAuthenticator:
    return DigestAuthenticator(SECRET, nonce_ttl=300.0)


def nonce_of(a: DigestAuthenticator, now: float = NOW, realm: str = REALM) -> str:
    return parse_challenge(a.challenge_headers(realm, now)[0][1])["nonce"]


def authorized(nonce: str, *, algorithm: str = "SHA-256", username: str = "501410",
               password: str = "s3cret", nc: str = "00000001", cnonce: str = "c0ffee",
               realm: str = REALM, header: str = "Authorization", uri: str = f"sip:{REALM}",
               send_algorithm: bool = True):
    resp = digest_response(algorithm=algorithm, username=username, realm=realm,
                           password=password, method="REGISTER", uri=uri, nonce=nonce,
                           nc=nc, cnonce=cnonce)
    alg = f", algorithm={algorithm}" if send_algorithm else ""
    value = (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", '
             f'uri="{uri}", response="{resp}"{alg}, qop=auth, nc={nc}, cnonce="{cnonce}"')
    return register(user=username, contacts=["<sip:501410@192.0.2.10>"],
                    extra=[f"{header}: {value}"])


def test_ha1_helper_matches_rfc_definition() -> None:
    assert ha1("u", "r", "p", "MD5") == __import__("hashlib").md5(b"u:r:p").hexdigest()
    assert ALICE.ha1_sha256 == __import__("hashlib").sha256(b"501410:acme.example:s3cret").hexdigest()


def algorithms(headers: list[tuple[str, str]]) -> list[str]:
    return [parse_challenge(v)["algorithm"] for _, v in headers]


def with_agent(agent: str | None, *, user: str = "501410") -> Request:
    req = register(user=user, contacts=["<sip:501410@192.0.2.10>"])
    if agent is None:
        return req.replace(headers=req.headers.remove("User-Agent"))
    return req.replace(headers=req.headers.replace("User-Agent", agent))


def test_challenge_offers_md5_then_sha256_with_qop_auth_by_default() -> None:
    headers = auth().challenge_headers(REALM, NOW, request=with_agent("Yealink SIP-T46S 66.86.0.15"))
    assert [n for n, _ in headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    first, second = (parse_challenge(v) for _, v in headers)
    assert first["algorithm"] == "MD5" and second["algorithm"] == "SHA-256"
    assert first["qop"] == second["qop"] == "auth"
    assert first["realm"] == REALM and first["nonce"] == second["nonce"]
    assert "stale" not in first
    proxy = auth().challenge_headers(REALM, NOW, stale=True, proxy=True, request=with_agent("x"))
    assert proxy[0][0] == "Proxy-Authenticate" and "stale=true" in proxy[0][1]


@pytest.mark.parametrize(("agent", "offered"), [
    ("sipsak 0.9.8.1", ["MD5", "SHA-256"]),  # answers the first challenge, whatever it is
    (None, ["MD5", "SHA-256"]),  # no User-Agent: the order every client accepts
    ("baresip v1.0.0 (x86_64/linux)", ["MD5"]),  # libre aborts on any non-MD5 challenge
    ("PJSUA v2.15.1 Linux-6.1/x86_64/glibc-2.36", ["SHA-256", "MD5"]),  # topmost supported
    ("PJSUA v2.14.1 Linux-6.1/x86_64/glibc-2.36", ["MD5", "SHA-256"]),  # MD5 only before 2.15
    ("PJSIP/2.16", ["SHA-256", "MD5"]),
    ("pjsua2-test", ["SHA-256", "MD5"]),  # a pjsua2 application naming itself
    ("wte-scenario/own", ["SHA-256", "MD5"]),
])
def test_offer_order_per_client(agent: str | None, offered: list[str]) -> None:
    assert algorithms(auth().challenge_headers(REALM, NOW, request=with_agent(agent))) == offered


def test_without_the_request_the_last_unanswered_verify_decides() -> None:
    """A driver that verifies then challenges without passing the request gets the policy
    of the request it just verified; once used, or with nothing verified, MD5 first."""
    a = auth()
    assert algorithms(a.challenge_headers(REALM, NOW)) == ["MD5", "SHA-256"]
    baresip = with_agent("baresip v1.0.0 (x86_64/linux)")
    assert a.verify(baresip, REALM, DIRECTORY, NOW).outcome is AuthOutcome.NO_CREDENTIALS
    assert algorithms(a.challenge_headers(REALM, NOW, proxy=True)) == ["MD5"]
    assert algorithms(a.challenge_headers(REALM, NOW, proxy=True)) == ["MD5", "SHA-256"]
    # a request whose credentials were checked leaves nothing behind
    pj = authorized(nonce_of(a), algorithm="MD5")
    pj = pj.replace(headers=pj.headers.replace("User-Agent", "baresip v1.0.0"))
    assert a.verify(baresip, REALM, DIRECTORY, NOW).outcome is AuthOutcome.NO_CREDENTIALS
    assert a.verify(pj, REALM, DIRECTORY, NOW).outcome is AuthOutcome.OK
    assert algorithms(a.challenge_headers(REALM, NOW)) == ["MD5", "SHA-256"]


def test_a_client_that_used_sha256_is_offered_sha256_first_next_time() -> None:
    a = auth()
    agent = "Grandstream GRP2612 1.0.5.67"
    assert algorithms(a.challenge_headers(REALM, NOW, request=with_agent(agent))) == ["MD5", "SHA-256"]
    req = authorized(nonce_of(a), algorithm="SHA-256")
    req = req.replace(headers=req.headers.replace("User-Agent", agent))
    assert a.verify(req, REALM, DIRECTORY, NOW).outcome is AuthOutcome.OK
    assert algorithms(a.challenge_headers(REALM, NOW, request=with_agent(agent))) == ["SHA-256", "MD5"]
    # learned for that exact software only, whoever it speaks for: keyed by user too, the
    # challenge would tell an existing user from an unknown one (enumeration)
    other_fw = with_agent("Grandstream GRP2612 1.0.3.1")
    assert algorithms(a.challenge_headers(REALM, NOW, request=other_fw)) == ["MD5", "SHA-256"]
    other_user = with_agent(agent, user="509999")
    assert algorithms(a.challenge_headers(REALM, NOW, request=other_user)) == ["SHA-256", "MD5"]
    # an MD5 answer or a failed SHA-256 one teaches nothing
    b = auth()
    md5 = authorized(nonce_of(b), algorithm="MD5")
    md5 = md5.replace(headers=md5.headers.replace("User-Agent", agent))
    assert b.verify(md5, REALM, DIRECTORY, NOW).outcome is AuthOutcome.OK
    bad = authorized(nonce_of(b), algorithm="SHA-256", password="guess")
    bad = bad.replace(headers=bad.headers.replace("User-Agent", agent))
    assert b.verify(bad, REALM, DIRECTORY, NOW).outcome is AuthOutcome.FAILED
    assert algorithms(b.challenge_headers(REALM, NOW, request=with_agent(agent))) == ["MD5", "SHA-256"]


def test_learned_clients_are_bounded() -> None:
    a = DigestAuthenticator(SECRET, max_learned_clients=2)
    for i in range(3):
        req = authorized(nonce_of(a), algorithm="SHA-256")
        req = req.replace(headers=req.headers.replace("User-Agent", f"Phone/{i}"))
        assert a.verify(req, REALM, DIRECTORY, NOW).outcome is AuthOutcome.OK
    orders = [algorithms(a.challenge_headers(REALM, NOW, request=with_agent(f"Phone/{i}")))[0]
              for i in range(3)]
    assert orders == ["MD5", "SHA-256", "SHA-256"]  # the oldest was forgotten


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_good_response_is_accepted(algorithm: str) -> None:
    a = auth()
    result = a.verify(authorized(nonce_of(a), algorithm=algorithm), REALM, DIRECTORY, NOW + 1)
    assert result.outcome is AuthOutcome.OK
    assert result.account == ALICE and result.algorithm == algorithm


def test_md5_is_the_default_algorithm_when_absent() -> None:
    a = auth()
    req = authorized(nonce_of(a), algorithm="MD5", send_algorithm=False)
    assert a.verify(req, REALM, DIRECTORY, NOW).outcome is AuthOutcome.OK


def test_proxy_authorization() -> None:
    a = auth()
    req = authorized(nonce_of(a), header="Proxy-Authorization")
    assert a.verify(req, REALM, DIRECTORY, NOW, proxy=True).outcome is AuthOutcome.OK
    assert a.verify(req, REALM, DIRECTORY, NOW).outcome is AuthOutcome.NO_CREDENTIALS


def test_no_credentials_and_other_realm() -> None:
    a = auth()
    req = register(contacts=["<sip:501410@192.0.2.10>"])
    assert a.verify(req, REALM, DIRECTORY, NOW).outcome is AuthOutcome.NO_CREDENTIALS
    other = authorized(nonce_of(a, realm="other.example"), realm="other.example")
    assert a.verify(other, REALM, DIRECTORY, NOW).outcome is AuthOutcome.NO_CREDENTIALS


def test_wrong_password_fails() -> None:
    a = auth()
    result = a.verify(authorized(nonce_of(a), password="guess"), REALM, DIRECTORY, NOW)
    assert result.outcome is AuthOutcome.FAILED and result.account is None
    assert result.username == "501410"


def test_unknown_user_looks_exactly_like_wrong_password() -> None:
    a = auth()
    unknown = a.verify(authorized(nonce_of(a), username="509999"), REALM, DIRECTORY, NOW)
    wrong = a.verify(authorized(nonce_of(a), password="guess"), REALM, DIRECTORY, NOW)
    assert unknown.outcome is wrong.outcome is AuthOutcome.FAILED
    assert unknown.account is wrong.account is None
    # the challenge does not depend on the user name at all (same shape, same fields)
    c1 = parse_challenge(a.challenge_headers(REALM, NOW)[0][1])
    c2 = parse_challenge(a.challenge_headers(REALM, NOW)[0][1])
    assert c1.keys() == c2.keys() and c1["realm"] == c2["realm"]


def test_stale_nonce_gets_stale_only_with_right_password() -> None:
    a = auth()
    nonce = nonce_of(a, NOW)
    later = NOW + 301
    assert a.verify(authorized(nonce), REALM, DIRECTORY, later).outcome is AuthOutcome.STALE
    wrong = a.verify(authorized(nonce, password="guess"), REALM, DIRECTORY, later)
    assert wrong.outcome is AuthOutcome.FAILED
    stale_unknown = a.verify(authorized(nonce, username="509999"), REALM, DIRECTORY, later)
    assert stale_unknown.outcome is AuthOutcome.FAILED


def test_nonce_from_another_secret_is_stale_not_failed() -> None:
    other = DigestAuthenticator(b"another-secret-of-32-bytes......")
    a = auth()
    assert a.verify(authorized(nonce_of(other)), REALM, DIRECTORY, NOW).outcome is AuthOutcome.STALE
    good = nonce_of(a)
    body, mac = good.rsplit(".", 1)
    # change the MAC's first character for sure (a fixed suffix was the MAC itself 1 time in 256)
    tampered = f"{body}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}"
    assert a.verify(authorized(tampered), REALM, DIRECTORY, NOW).outcome is AuthOutcome.STALE


def test_persisted_secret_survives_restart() -> None:
    nonce = nonce_of(auth())
    assert auth().verify(authorized(nonce), REALM, DIRECTORY, NOW + 5).outcome is AuthOutcome.OK


def test_nonce_is_bound_to_its_realm() -> None:
    a = auth()
    nonce = nonce_of(a, realm="other.example")
    assert a.verify(authorized(nonce), REALM, DIRECTORY, NOW).outcome is AuthOutcome.STALE


def test_nonce_count_replay_is_rejected() -> None:
    a = auth()
    nonce = nonce_of(a)
    assert a.verify(authorized(nonce, nc="00000001"), REALM, DIRECTORY, NOW).outcome is AuthOutcome.OK
    replay = a.verify(authorized(nonce, nc="00000001"), REALM, DIRECTORY, NOW + 1)
    assert replay.outcome is AuthOutcome.STALE and replay.account is None
    assert a.verify(authorized(nonce, nc="00000002"), REALM, DIRECTORY, NOW + 2).outcome is AuthOutcome.OK
    assert a.verify(authorized(nonce, nc="00000002"), REALM, DIRECTORY, NOW + 3).outcome is AuthOutcome.STALE


def test_nonce_tracking_is_bounded_and_evicted_nonces_refused() -> None:
    a = DigestAuthenticator(SECRET, max_tracked_nonces=3)
    nonces = [nonce_of(a, NOW + i) for i in range(5)]
    for i, n in enumerate(nonces):
        assert a.verify(authorized(n), REALM, DIRECTORY, NOW + i).outcome is AuthOutcome.OK
    assert a.tracked_nonces() <= 3
    # the first nonce's nc history is gone: it can no longer be used at all
    old = a.verify(authorized(nonces[0], nc="00000002"), REALM, DIRECTORY, NOW + 6)
    assert old.outcome is AuthOutcome.STALE


@pytest.mark.parametrize("mutate", [
    lambda v: v.replace("qop=auth, ", ""),
    lambda v: v.replace("qop=auth", "qop=auth-int"),
    lambda v: v.replace("algorithm=SHA-256", "algorithm=SHA-512-256"),
    lambda v: v.replace(', cnonce="c0ffee"', ""),
    lambda v: v.replace("nc=00000001", "nc=1"),
    lambda v: v.replace(f'uri="sip:{REALM}"', 'uri="sip:elsewhere.example"'),
])
def test_malformed_or_unsupported_credentials_fail(mutate) -> None:  # type: ignore[no-untyped-def]
    a = auth()
    req = authorized(nonce_of(a))
    value = mutate(req.headers.get("Authorization"))
    req = req.replace(headers=req.headers.replace("Authorization", value))
    assert a.verify(req, REALM, DIRECTORY, NOW).outcome is AuthOutcome.FAILED


def test_parse_auth_params_quoting() -> None:
    scheme, p = parse_auth_params('Digest username="a\\"b", realm="x, y",nc=00000001')
    assert scheme == "digest"
    assert p == {"username": 'a"b', "realm": "x, y", "nc": "00000001"}
