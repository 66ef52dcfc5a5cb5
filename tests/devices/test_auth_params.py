"""Auth-param lists (RFC 7235 2.1, RFC 3261 25.1, RFC 7616 3.4): both scanners, same answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.authparams import DigestParseError, _scan_common, _scan_exact, parse_auth_params

PHONE = ('Digest username="501410", realm="acme.example", nonce="6b49d200.0123abcd.AbCd-_x", '
         'uri="sip:acme.example", response="0123456789abcdef0123456789abcdef", '
         'algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"')


def test_what_phones_send_takes_the_common_scanner() -> None:
    rest = PHONE[len("Digest "):]
    common = _scan_common(rest)
    assert common is not None and common == _scan_exact(rest)
    assert common["nonce"] == "6b49d200.0123abcd.AbCd-_x" and common["qop"] == "auth"
    assert parse_auth_params(PHONE) == ("digest", common)


@pytest.mark.parametrize(("value", "expected"), [
    ('Digest username="a\\"b", realm="x, y",nc=00000001',
     {"username": 'a"b', "realm": "x, y", "nc": "00000001"}),  # quoted-pair, comma inside
    ('DIGEST Realm="r" , NONCE = "n",QOP=auth', {"realm": "r", "nonce": "n", "qop": "auth"}),
    ("Digest\tqop=auth,\tnc=1", {"qop": "auth", "nc": "1"}),  # tabs are whitespace too
    ('Digest , ,a=b,,c="",d=', {"a": "b", "c": "", "d": ""}),  # empty elements and values
    ('Digest a="x"  ,b=y , ', {"a": "x", "b": "y"}),
    ('Digest a=b=c', {"a": "b=c"}),
    ('Digest a="\\\\"', {"a": "\\"}),
    ("Digest", {}),
])
def test_valid_lists(value: str, expected: dict[str, str]) -> None:
    assert parse_auth_params(value) == (value.split(None, 1)[0].lower(), expected)


@pytest.mark.parametrize("value", [
    "",
    "   ",
    'Digest realm="x", realm="y"',  # a directive at most once (RFC 7616 3.4)
    'Digest Realm="x", realm="y"',  # names are case-insensitive: still a duplicate
    'Digest realm="unterminated',
    'Digest realm="x"y, nonce="n"',  # text after a quoted value
    'Digest realm="x" nonce="n"',  # no comma
    'Digest a b=c',
    "Digest a=b c",
    'Digest "x"',
    'Digest a="x""y"',
    "Digest word",
    'Digest a=b"c"',
    "Digest a=b\nc=d",
])
def test_malformed_lists_raise(value: str) -> None:
    with pytest.raises(DigestParseError):
        parse_auth_params(value)


def test_a_duplicate_is_refused_whichever_scanner() -> None:
    rest = 'response="a", response="b"'
    assert _scan_common(rest) is None
    with pytest.raises(DigestParseError, match="duplicate auth-param response"):
        parse_auth_params("Digest " + rest)


_PIECES = st.sampled_from([
    "a", "B", "nonce", "=", "==", ",", ", ", " ", "  ", "\t", '"', '"x"', '"a, b"', "\\",
    '\\"', "\n", "00000001", "sip:h.example;x=y", "é", "\x01", "", " = ",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_the_common_scanner_agrees_with_the_exact_one(rest: str) -> None:
    try:
        exact: dict[str, str] | None = _scan_exact(rest)
    except DigestParseError:
        exact = None
    common = _scan_common(rest)
    if common is not None:
        assert common == exact
    elif exact is not None:
        # the common scanner may only pass on what it does not handle
        assert "\\" in rest or not rest.isprintable()
