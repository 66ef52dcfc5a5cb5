"""The parser's fast paths (issue 21) give what the general paths give, errors included.

Each fast path is checked against the general code it short-cuts, on hostile text drawn by
hypothesis from the characters that matter to the grammar, and on the wire vectors.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.sip import Request, Response, SipParseError, parse_message
from switch.sip.address import _parse_name_addr, _with_cached_base, parse_name_addr
from switch.sip.cseq import _parse_cseq, parse_cseq
from switch.sip.grammar import _parse_params_general, parse_params, parse_uint
from switch.sip.message import Message
from switch.sip.via import _parse_via, parse_via

from .vectors import valid_paths

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
PARAM_TEXT = st.text(alphabet=st.sampled_from(list(";=a Bz9.\t\"\\,%[]:&+$-_~!*'()<>\x0b\u00e9")),
                     max_size=24)
ADDR_TEXT = st.text(alphabet=st.sampled_from(list('<>";=@: \tabS.pi1%,?\\')), max_size=30)
# mostly well-formed name-addrs with hostile pieces, so the fast path is taken often
NAME_ADDR = st.builds(
    lambda pad, display, uri, close, tail: f"{pad}{display}<{uri}{close}{tail}",
    st.sampled_from(["", " ", "\t"]),
    st.sampled_from(["", '"Alice" ', "Bob ", '"a>b" ', '"q\\"" ', "J R ", "\u00e9 ", '"x'], ),
    st.sampled_from(["sip:alice@example.com", "sip:a@b;lr", "sips:[::1]:5061", "tel:+331",
                     "sip:a b@c", "urn:service:sos", "sip:x@y?h=v"]),
    st.sampled_from([">", ">>", ""]),
    PARAM_TEXT,
)


def _outcome(fn: object, *args: object, **kwargs: object) -> object:
    try:
        return fn(*args, **kwargs)  # type: ignore[operator]
    except SipParseError as exc:
        return ("error", exc.status)


@FUZZ
@given(PARAM_TEXT, st.booleans(), st.booleans())
def test_params_fast_path_matches_the_general_loop(text: str, lower: bool, uri: bool) -> None:
    text = ";" + text
    assert _outcome(parse_params, text, lower_names=lower, uri=uri) == _outcome(
        _parse_params_general, text, lower, uri)


@pytest.mark.parametrize("text", [
    ";branch=z9hG4bK776asdhds;rport", ";rport;branch=z9hG4bKx", ";TAG=AbC", ";a=b=c", ";a==",
    ";a=", ";a;;b", ";lr", ';x="a;b"', " ; a = b ", ";a=b ", ";a=b\x0bc", ";a=\u00e9",
])
def test_params_fast_path_examples(text: str) -> None:
    for uri in (False, True):
        assert _outcome(parse_params, text, uri=uri) == _outcome(
            _parse_params_general, text, True, uri)


@FUZZ
@given(st.one_of(ADDR_TEXT, NAME_ADDR))
def test_name_addr_cached_base_matches_the_general_parse(text: str) -> None:
    try:
        expected: object = _parse_name_addr(text)
    except SipParseError:
        expected = None
    try:
        fast: object = _with_cached_base(text)
    except SipParseError:
        fast = None  # the caller falls back; the general parse raises the same status
    assert fast is None or fast == expected


@pytest.mark.parametrize("text", [
    '"Alice" <sip:alice@example.com>;tag=98asjd8', "<sip:a@b>;tag=1 ", " <sip:a@b>",
    "Bob <sip:bob@b;lr>;expires=60;q=0.5", '<sip:a@b>;x="q>r"', "<sip:a@b>;x=y>",
    "sip:a@b;tag=1", "<sip:a@b> junk", '"a>b" <sip:a@b>;tag=2', "<sip:a@b>>",
])
def test_name_addr_examples(text: str) -> None:
    expected = _outcome(_parse_name_addr, text)
    assert _outcome(parse_name_addr, text) == expected
    assert _outcome(parse_name_addr, text) == expected  # again, from the caches


def test_cseq_cache_shares_equal_values() -> None:
    assert parse_cseq("7 INVITE") is parse_cseq("7 INVITE") == _parse_cseq("7 INVITE")
    with pytest.raises(SipParseError):
        parse_cseq("2147483648 INVITE")


@pytest.mark.parametrize("text", ["0", "70", " 255\t", "4294967295", "4294967296", "",
                                  "-1", "1e3", "\u0661\u0662", "\u00b2", "12345678901", "7 0"])
def test_uint_accepts_ascii_digits_only(text: str) -> None:
    t = text.strip(" \t")
    ok = t.isascii() and t.isdigit() and len(t) <= 10 and int(t) <= 2**32 - 1
    assert _outcome(parse_uint, text, "X") == (int(t) if ok else ("error", 400))


def _lazy_views(msg: Message) -> tuple[object, ...]:
    # a message built by hand computes every view lazily, as before issue 21
    fresh: Message
    if isinstance(msg, Request):
        fresh = Request(msg.method, msg.uri, msg.headers, msg.body)
    else:
        assert isinstance(msg, Response)
        fresh = Response(msg.status, msg.reason, msg.headers, msg.body)
    return (fresh.vias, fresh.call_id, fresh.cseq, fresh.from_, fresh.to, fresh.max_forwards,
            fresh.expires)


@pytest.mark.parametrize("path", valid_paths(), ids=lambda p: p.name)
def test_views_set_by_the_parser_equal_the_lazy_views(path: object) -> None:
    msg = parse_message(path.read_bytes())  # type: ignore[attr-defined]
    assert (msg.vias, msg.call_id, msg.cseq, msg.from_, msg.to, msg.max_forwards,
            msg.expires) == _lazy_views(msg)


VIA_TEXT = st.builds(
    lambda proto, host, port, params: f"{proto}{host}{port}{params}",
    st.sampled_from(["SIP/2.0/UDP ", "SIP/2.0/tcp ", "sip/2.0/UDP ", "SIP/2.0/TLS  ",
                     "SIP / 2.0 / UDP ", "SIP/2.0/WSS ", "SIP/3.0/UDP ", "SIP/2.0/UDP\t"]),
    st.sampled_from(["192.0.2.1", "Host.Example.com", "[2001:db8::1]", "a_b", "h", ""]),
    st.sampled_from(["", ":5060", ":65535", ":65536", ":99999", ":123456", " : 5060", ":"]),
    PARAM_TEXT.map(lambda t: ";" + t if t else ""),
)


@FUZZ
@given(VIA_TEXT)
def test_via_fast_path_matches_the_general_parse(text: str) -> None:
    assert _outcome(parse_via, text) == _outcome(_parse_via, text.strip(" \t"))


def test_new_dialogs_do_not_push_the_phones_addresses_out_of_the_cache() -> None:
    """A stream of dialogs (every From a new tag) must not evict what re-registrations of
    the phones read again: their untagged To and Contact (issue 21, 10,000 phones)."""
    from switch.sip import address

    phone = "<sip:501410@acme.example>"
    first = parse_name_addr(phone)
    for n in range(3 * 4096):  # three times what the dialog cache holds
        tagged = parse_name_addr(f'"Caller" <sip:{n}@acme.example>;tag={n:x}')
        assert tagged.params == (("tag", f"{n:x}"),)
        assert parse_name_addr(f"<sip:{n}@acme.example>;tag={n:x}") is not None
    assert parse_name_addr(phone) is first  # still the cached object
    assert address._CACHE.get(phone) is first
    # and a dialog's tagged value, read again within the dialog, is shared
    dialog = '<sip:501411@acme.example>;tag=abc'
    assert parse_name_addr(dialog) is parse_name_addr(dialog)
