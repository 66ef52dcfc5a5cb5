"""URIs (RFC 3261 19.1, RFC 3966, RFC 5031), name-addr (20.10) and Via (20.42, RFC 3581)."""

from __future__ import annotations

import pytest

from switch.sip import (
    AbsoluteUri,
    SipParseError,
    SipUri,
    TelUri,
    parse_name_addr,
    parse_uri,
    parse_via,
    uri_user,
)


def test_sip_uri_parts_and_escaped_user() -> None:
    uri = parse_uri("sips:Alice%20B:se%63ret@Example.COM:5061;transport=TLS;lr;maddr=[2001:db8::1]?Subject=hi&Priority=urgent")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sips", "Alice%20B", "se%63ret", "example.com", 5061)
    assert uri.user_unescaped == "Alice B" and uri_user(uri) == "Alice B"
    assert uri.params == (("transport", "TLS"), ("lr", None), ("maddr", "[2001:db8::1]"))
    assert uri.transport == "tls" and uri.param("lr") == "" and uri.headers == "Subject=hi&Priority=urgent"
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize("text,host,port", [
    ("sip:[2001:db8::10]", "[2001:db8::10]", None),
    ("sip:user@[2001:DB8::10]:5070", "[2001:db8::10]", 5070),
    ("sip:[::ffff:192.0.2.10]:5060;transport=udp", "[::ffff:192.0.2.10]", 5060),
    ("sip:192.0.2.1:0", "192.0.2.1", 0),
])
def test_ipv6_and_ports(text: str, host: str, port: int | None) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri) and uri.host == host and uri.port == port


@pytest.mark.parametrize("text", [
    "sip:user@[2001:db8::10", "sip:[2001:db8:::1]", "sip:[zz::1]", "sip:host:65536", "sip:host:5x",
    "sip:a b@host", "sip:%zz@host", "sip:@host", "sip:", "sip:host;=x", "sip:host;a=%G0",
    "sip:host?", "sip:u@h@i", "tel:", "tel:+", "tel:+1+2", "tel:12;phone context=x", "1sip:x",
    "nocolon", ":x", "urn:",
])
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


def test_tel_uri_visual_separators_and_context() -> None:
    tel = parse_uri("tel:+33-5-62.07.04(10);ext=12")
    assert isinstance(tel, TelUri) and tel.is_global
    assert tel.digits == "+33562070410" and uri_user(tel) == "+33562070410"
    assert tel.param("ext") == "12"
    local = parse_uri("tel:7042;phone-context=+3356207")
    assert isinstance(local, TelUri) and not local.is_global and local.param("phone-context") == "+3356207"
    assert str(local) == "tel:7042;phone-context=+3356207"


def test_service_urn_is_kept_verbatim() -> None:
    uri = parse_uri("urn:service:sos.police")
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "urn" and uri.rest == "service:sos.police"
    assert str(uri) == "urn:service:sos.police" and uri_user(uri) is None


def test_name_addr_quoted_display_with_escapes() -> None:
    addr = parse_name_addr('"Dupont \\"Jean\\" \\\\ co" <sip:jean@example.com;transport=tcp>;tag=abc ; q=0.5')
    assert addr.display == 'Dupont "Jean" \\ co'
    assert addr.uri.params == (("transport", "tcp"),)  # type: ignore[union-attr]
    assert addr.params == (("tag", "abc"), ("q", "0.5")) and addr.tag == "abc"
    assert parse_name_addr(str(addr)) == addr


def test_addr_spec_params_belong_to_the_header() -> None:
    addr = parse_name_addr("sip:alice@example.com;tag=1928;expires=60")
    assert isinstance(addr.uri, SipUri) and addr.uri.params == ()
    assert addr.params == (("tag", "1928"), ("expires", "60"))
    # the same URI inside <> keeps its own parameters
    inner = parse_name_addr("<sip:alice@example.com;tag=1928>")
    assert inner.tag is None and inner.uri.param("tag") == "1928"  # type: ignore[union-attr]


def test_token_display_names() -> None:
    assert parse_name_addr("Alice  Smith <sip:a@b>").display == "Alice  Smith"
    assert parse_name_addr("caller<sip:caller@example.com>").display == "caller"
    assert parse_name_addr("<sip:a@b>").display is None
    assert parse_name_addr('"" <sip:a@b>').display == ""
    quoted_param = parse_name_addr('<sip:a@b>;+sip.instance="<urn:uuid:1-2>";reg-id=1')
    assert quoted_param.param("+sip.instance") == '"<urn:uuid:1-2>"'


@pytest.mark.parametrize("text", [
    '"unterminated <sip:a@b>', "Bell, Alexander <sip:a@b>", "< sip:a@b >", "<sip:a@b",
    "sip:a@b?x=y", "sip:a@b, sip:c@d", "<sip:a@b> garbage", "<sip:a@b>;tag=x y", "",
    '"x" y <sip:a@b>', "<sip:a@b>;tag=\"open", "<<sip:a@b>>", "a\"b <sip:a@b>",
])
def test_bad_name_addrs(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text)


def test_via_rport_received_and_lws() -> None:
    via = parse_via("SIP / 2.0 / udp  pc33.Example.com : 5060 ; branch = z9hG4bK776 ; rport ;received=192.0.2.1")
    assert (via.transport, via.host, via.port) == ("UDP", "pc33.example.com", 5060)
    assert via.branch == "z9hG4bK776" and via.has_rfc3261_branch
    assert via.wants_rport and via.rport is None and via.received == "192.0.2.1"
    stamped = via.with_received("198.51.100.7", 40000)
    assert stamped.rport == 40000 and stamped.received == "198.51.100.7"
    assert parse_via(str(stamped)) == stamped


def test_via_ipv6() -> None:
    via = parse_via("SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKx;received=[2001:db8::9:255];rport=5070")
    assert via.host == "[2001:db8::9:1]" and via.port == 5061 and via.rport == 5070
    assert via.received == "[2001:db8::9:255]"
    assert not parse_via("SIP/2.0/UDP h;branch=1234").has_rfc3261_branch


@pytest.mark.parametrize("text", [
    "SIP/2.0/UDP", "SIP/2.0 UDP host", "SIP/3.0/UDP host", "HTTP/2.0/UDP host", "SIP/2.0/UDP host:x",
    "SIP/2.0/UDP host;;", "SIP/2.0/UDP host;branch=", "SIP/2.0/UDP [::1", "SIP/2.0/UDP host junk",
])
def test_bad_vias(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_via(text)
