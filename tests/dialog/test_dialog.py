"""RFC 3261 section 12 dialogs: creation on both sides, route sets, in-dialog requests."""

from __future__ import annotations

import pytest

from switch.dialog.dialog import Dialog, DialogError, DialogState
from switch.sip import Request, Response, SipUri, Via, make_response, parse_message, parse_uri

VIA = Via("UDP", "198.51.100.7", 5060, (("rport", None),))

INVITE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    "Max-Forwards: 70\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def req(text: str) -> Request:
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def resp(text: str) -> Response:
    msg = parse_message(text.encode())
    assert isinstance(msg, Response)
    return msg


def answer(invite: Request, status: int, *, rr: tuple[str, ...] = (), contact: str | None = "<sip:bob@192.0.2.4>") -> Response:
    headers = [("Record-Route", r) for r in rr]
    if contact is not None:
        headers.append(("Contact", contact))
    return make_response(invite, status, to_tag="a6c85cf", headers=headers)


# -- UAS side --------------------------------------------------------------------------------


def uas_dialog(status: int = 200) -> Dialog:
    invite = req(INVITE)
    return Dialog.uas(invite, answer(invite, status))


def test_uas_creation() -> None:
    d = uas_dialog()
    assert (d.call_id, d.local_tag, d.remote_tag) == ("a84b4c76e66710", "a6c85cf", "1928301774")
    assert d.state is DialogState.CONFIRMED and not d.is_uac and not d.secure
    assert str(d.remote_target) == "sip:alice@pc33.atlanta.example.com"
    # UAS: the route set is the Record-Route as received (12.1.1)
    assert [str(r.uri) for r in d.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert d.remote_seq == 314159 and d.local_seq is None
    assert str(d.local_uri.uri) == "sip:bob@biloxi.example.com"


def test_uas_bye_uses_route_set_and_fresh_cseq() -> None:
    d = uas_dialog()
    bye = d.create_request("BYE", VIA)
    assert bye.method == "BYE" and str(bye.uri) == "sip:alice@pc33.atlanta.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.from_.tag == "a6c85cf" and bye.to.tag == "1928301774"
    assert str(bye.from_.uri) == "sip:bob@biloxi.example.com"
    assert bye.cseq.seq == 1 and bye.max_forwards == 70
    assert bye.top_via.has_rfc3261_branch and bye.top_via.wants_rport
    assert "Contact" not in bye.headers
    again = parse_message(bye.to_bytes())
    assert isinstance(again, Request) and again.cseq.method == "BYE"
    assert d.create_request("INFO", VIA).cseq.seq == 2
    assert d.create_request("INFO", VIA).top_via.branch != bye.top_via.branch


def test_uas_early_dialog_confirmed_then_terminated() -> None:
    d = uas_dialog(180)
    assert d.state is DialogState.EARLY
    d.confirm()
    assert d.state is DialogState.CONFIRMED
    bye = in_dialog("BYE", 314160)
    d.receive_request(bye)
    assert d.state is DialogState.TERMINATED
    with pytest.raises(DialogError) as err:
        d.receive_request(bye)
    assert err.value.status == 481
    with pytest.raises(DialogError):
        d.confirm()
    with pytest.raises(DialogError):
        d.create_request("INFO", VIA)


def in_dialog(method: str, seq: int, contact: str | None = None) -> Request:
    text = (INVITE.replace("INVITE sip", f"{method} sip")
            .replace("314159 INVITE", f"{seq} {method}")
            .replace("To: Bob <sip:bob@biloxi.example.com>", "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf"))
    if contact is not None:
        text = text.replace("<sip:alice@pc33.atlanta.example.com>", contact)
    return req(text)


def test_remote_cseq_ordering_500() -> None:
    d = uas_dialog()
    d.receive_request(in_dialog("INFO", 314160))
    assert d.remote_seq == 314160
    with pytest.raises(DialogError) as err:
        d.receive_request(in_dialog("INFO", 314158))
    assert err.value.status == 500
    d.receive_request(in_dialog("ACK", 314159))  # ACK keeps the INVITE number: not ordered
    assert d.remote_seq == 314160


def test_request_for_another_dialog_is_481() -> None:
    d = uas_dialog()
    other = req(in_dialog("INFO", 314160).to_bytes().decode().replace("tag=a6c85cf", "tag=zzz"))
    with pytest.raises(DialogError) as err:
        d.receive_request(other)
    assert err.value.status == 481


def test_target_refresh_by_reinvite_and_update() -> None:
    d = uas_dialog()
    d.receive_request(in_dialog("INVITE", 314160, "<sip:alice@10.0.0.9:5070>"))
    assert str(d.remote_target) == "sip:alice@10.0.0.9:5070"
    d.receive_request(in_dialog("UPDATE", 314161, "<sip:alice@10.0.0.10>"))
    assert str(d.remote_target) == "sip:alice@10.0.0.10"
    d.receive_request(in_dialog("INFO", 314162, "<sip:alice@10.0.0.11>"))  # not a refresh
    assert str(d.remote_target) == "sip:alice@10.0.0.10"


def test_missing_contact_in_invite_is_400() -> None:
    invite = req(INVITE.replace("Contact: <sip:alice@pc33.atlanta.example.com>\r\n", ""))
    with pytest.raises(DialogError) as err:
        Dialog.uas(invite, answer(invite, 200))
    assert err.value.status == 400


def test_no_to_tag_no_dialog() -> None:
    invite = req(INVITE)
    with pytest.raises(DialogError):
        Dialog.uas(invite, make_response(invite, 180))


def test_secure_flag() -> None:
    invite = req(INVITE.replace("INVITE sip:bob", "INVITE sips:bob"))
    assert Dialog.uas(invite, answer(invite, 200), secure_transport=True).secure
    assert not Dialog.uas(invite, answer(invite, 200), secure_transport=False).secure


# -- UAC side --------------------------------------------------------------------------------

OUR_INVITE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: <sip:switch@198.51.100.7>;tag=ourtag\r\n"
    "Call-ID: c1@198.51.100.7\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:switch@198.51.100.7:5060>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def uac_dialog(status: int = 200, rr: tuple[str, ...] = ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")) -> tuple[Dialog, Request]:
    invite = req(OUR_INVITE)
    return Dialog.uac(invite, answer(invite, status, rr=rr)), invite


def test_uac_creation_route_set_reversed() -> None:
    d, _ = uac_dialog()
    assert (d.local_tag, d.remote_tag, d.local_seq) == ("ourtag", "a6c85cf", 10)
    assert [str(r.uri) for r in d.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert str(d.remote_target) == "sip:bob@192.0.2.4"
    reinvite = d.create_request("INVITE", VIA, body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq.seq == 11 and reinvite.headers.get("Contact") == "<sip:switch@198.51.100.7:5060>"
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    assert reinvite.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert reinvite.from_.tag == "ourtag" and reinvite.to.tag == "a6c85cf"


def test_ack_for_2xx_keeps_the_invite_cseq() -> None:
    d, _ = uac_dialog()
    ack = d.create_request("ACK", VIA)
    assert ack.cseq.seq == 10 and ack.cseq.method == "ACK"
    assert d.local_seq == 10  # ACK does not consume a number
    d.create_request("INVITE", VIA)  # re-INVITE: 11
    bye_before = d.create_request("INFO", VIA)  # 12
    ack2 = d.create_request("ACK", VIA)
    assert ack2.cseq.seq == 11 and bye_before.cseq.seq == 12
    assert ack2.top_via.branch != ack.top_via.branch  # a 2xx ACK is its own transaction


def test_strict_route() -> None:
    d, _ = uac_dialog(rr=("<sip:loose.example.com;lr>", "<sip:strict.example.com;maddr=10.1.1.1>"))
    # UAC reverses: strict.example.com first, without lr -> strict routing (12.2.1.1)
    bye = d.create_request("BYE", VIA)
    assert str(bye.uri) == "sip:strict.example.com;maddr=10.1.1.1"
    assert bye.headers.get_all("Route") == ["<sip:loose.example.com;lr>", "<sip:bob@192.0.2.4>"]


def test_uac_early_then_2xx_recomputes_route_set_and_target() -> None:
    invite = req(OUR_INVITE)
    ringing = answer(invite, 180, rr=("<sip:p1.example.com;lr>",), contact=None)
    d = Dialog.uac(invite, ringing)
    assert d.state is DialogState.EARLY and d.remote_target == invite.uri  # no Contact in 180
    ok = answer(invite, 200, rr=("<sip:p9.example.com;lr>",), contact="<sip:bob@192.0.2.5>")
    d.receive_response(ok, "INVITE")
    assert d.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in d.route_set] == ["sip:p9.example.com;lr"]
    assert d.remote_target == parse_uri("sip:bob@192.0.2.5")


def test_uac_early_dialog_ends_on_failure() -> None:
    invite = req(OUR_INVITE)
    d = Dialog.uac(invite, answer(invite, 183))
    d.receive_response(make_response(invite, 486, to_tag="a6c85cf"), "INVITE")
    assert d.state is DialogState.TERMINATED


def test_reinvite_2xx_refreshes_target_and_481_ends_dialog() -> None:
    d, _ = uac_dialog()
    reinvite = d.create_request("INVITE", VIA)
    d.receive_response(make_response(reinvite, 200, headers=[("Contact", "<sip:bob@192.0.2.77>")]), "INVITE")
    assert d.remote_target == parse_uri("sip:bob@192.0.2.77") and d.state is DialogState.CONFIRMED
    info = d.create_request("INFO", VIA)
    d.receive_response(make_response(info, 481), "INFO")
    assert d.state is DialogState.TERMINATED


def test_2xx_without_contact_is_rejected() -> None:
    invite = req(OUR_INVITE)
    with pytest.raises(DialogError):
        Dialog.uac(invite, answer(invite, 200, contact=None))


def test_uas_side_local_cseq_and_ack_for_its_reinvite() -> None:
    d = uas_dialog()
    with pytest.raises(DialogError):
        d.create_request("ACK", VIA)  # no INVITE of ours yet
    reinvite = d.create_request("INVITE", VIA)
    assert reinvite.cseq.seq == 1 and d.create_request("ACK", VIA).cseq.seq == 1
    assert isinstance(reinvite.uri, SipUri)


def test_cancel_is_not_an_in_dialog_request() -> None:
    d, _ = uac_dialog(183)
    with pytest.raises(DialogError):
        d.create_request("CANCEL", VIA)


@pytest.mark.parametrize("rr", [(), ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"),
                                ("<sip:loose.example.com;lr>",
                                 "<sip:strict.example.com;maddr=10.1.1.1>")])
def test_ack_bytes_are_the_ack_request_serialised(rr: tuple[str, ...]) -> None:
    """The 2xx ACK the B2BUA sends as bytes is the ACK `create_request` builds, branch
    aside: route set, Request-URI (strict routing too), tags, CSeq of the INVITE."""
    d, _ = uac_dialog(rr=rr)
    fast = d.ack_bytes(VIA, 10)
    built = d.create_request("ACK", VIA, cseq=10)
    parsed = parse_message(fast)
    assert isinstance(parsed, Request) and parsed.method == "ACK"
    assert parsed.top_via.branch != built.top_via.branch  # each ACK its own branch
    ours, theirs = built.top_via.branch, parsed.top_via.branch
    assert ours is not None and theirs is not None
    same_branch = built.to_bytes().replace(ours.encode(), theirs.encode())
    assert fast == same_branch
    assert parsed.cseq.seq == 10 and parsed.to.tag == "a6c85cf" and parsed.from_.tag == "ourtag"


def test_from_and_to_follow_a_changed_tag() -> None:
    """The formatted From/To are kept per dialog, but never outlive a change of tag or URI."""
    d, _ = uac_dialog()
    first = d.create_request("INFO", VIA)
    d.remote_tag = "changed"
    d.local_uri = d.local_uri.with_params(())
    second = d.create_request("INFO", VIA)
    assert first.to.tag == "a6c85cf" and second.to.tag == "changed"
    assert second.from_.tag == "ourtag"
