"""Attended transfer, pure parts: Replaces and Refer-To parsing (RFC 3891, RFC 3515),
matching a Replaces to one of a call's dialogs, the join's states, the o= a B2BUA keeps
per dialog (RFC 3264 8), and a call giving its callee away."""

from __future__ import annotations

import pytest

from switch.b2bua.call import Call, CallState
from switch.b2bua.effects import (
    Answered,
    Disposition,
    Ended,
    LegId,
    RespondCaller,
    SendRequest,
    Side,
)
from switch.b2bua.replaces import (
    Join,
    JoinError,
    JoinInput,
    JoinMode,
    JoinState,
    Replaces,
    continue_origin,
    dialog_key,
    find_side,
    parse_refer_to,
    parse_replaces,
)
from switch.dialog.sdp import parse_sdp
from switch.sip import SipError
from tests.b2bua.test_call import PHONE_1, b_invite, make_call, reply


def test_replaces_header_is_parsed() -> None:
    r = parse_replaces("98asjd8@test.com ; to-tag=12345;from-tag=54321;early-only")
    assert r == Replaces("98asjd8@test.com", "12345", "54321", early_only=True)
    assert str(r) == "98asjd8@test.com;to-tag=12345;from-tag=54321;early-only"
    assert not parse_replaces("x;from-tag=b;to-tag=a").early_only


@pytest.mark.parametrize("value", ["", "abc;to-tag=1", "abc;from-tag=2", "a b;to-tag=1;from-tag=2",
                                   "abc;to-tag=;from-tag=2"])
def test_a_replaces_without_its_tags_is_400(value: str) -> None:
    with pytest.raises(SipError) as err:
        parse_replaces(value)
    assert err.value.status == 400


def test_refer_to_with_an_escaped_replaces_as_pjsua2_sends_it() -> None:
    target = parse_refer_to(
        "<sip:501412@acme.example?Require=replaces&Replaces=abc%40host%3Bto-tag%3Dt1"
        "%3Bfrom-tag%3Df1>")
    assert target.uri == "sip:501412@acme.example"
    assert target.replaces == Replaces("abc@host", "t1", "f1")
    assert target.require_replaces


def test_refer_to_without_replaces_is_a_blind_transfer() -> None:
    target = parse_refer_to("<sip:502411@acme.example;user=phone>")
    assert target.replaces is None and target.uri == "sip:502411@acme.example;user=phone"
    with pytest.raises(SipError) as err:
        parse_refer_to("<not a uri")
    assert err.value.status == 400


def answered_call() -> Call:
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 200, tag="bt-callee", body=b"sdp"), 1.0)
    return call


def test_the_replaces_of_a_ringing_caller_matches_its_early_dialog() -> None:
    call = make_call()
    key = dialog_key(call, Side.CALLER)
    assert key is not None and not key.confirmed
    # RFC 3891 3: to-tag is ours (the recipient's), from-tag the phone's
    assert find_side(Replaces("a-call", call.a_to_tag, "at"), call) is Side.CALLER
    assert dialog_key(call, Side.CALLEE) is None


def test_replaces_matches_either_side_of_an_answered_call() -> None:
    call = answered_call()
    assert call.state is CallState.ANSWERED
    assert find_side(Replaces("a-call", call.a_to_tag, "at"), call) is Side.CALLER
    # the callee's dialog: our tag is the From tag of our INVITE
    assert find_side(Replaces("b1", "bt", "bt-callee"), call) is Side.CALLEE


@pytest.mark.parametrize(("replaces", "status"), [
    (Replaces("a-call", "wrong", "at"), 481),            # RFC 3891 3: no match
    (Replaces("b1", "bt-callee", "bt"), 481),            # tags the wrong way round
    (Replaces("other", "x", "y"), 481),
])
def test_a_replaces_that_names_no_dialog_is_refused(replaces: Replaces, status: int) -> None:
    with pytest.raises(SipError) as err:
        find_side(replaces, answered_call())
    assert err.value.status == status


def test_early_only_against_a_confirmed_dialog_is_486() -> None:
    call = answered_call()
    with pytest.raises(SipError) as err:
        find_side(Replaces("a-call", call.a_to_tag, "at", early_only=True), call)
    assert err.value.status == 486


def test_an_ended_call_is_never_replaced() -> None:
    call = answered_call()
    call.on_bye(Side.CALLER, 5.0)
    with pytest.raises(SipError) as err:
        find_side(Replaces("a-call", call.a_to_tag, "at"), call)
    assert err.value.status == 603


@pytest.mark.parametrize(("mode", "answered", "inputs", "states"), [
    (JoinMode.RELAY, True, [JoinInput.TARGET_OK], [JoinState.JOINED]),
    (JoinMode.DIRECT, True, [JoinInput.TARGET_OK, JoinInput.TRANSFEREE_OK],
     [JoinState.OFFER_TO_TRANSFEREE, JoinState.JOINED]),
    (JoinMode.RELAY, False, [JoinInput.TARGET_ANSWERED, JoinInput.TARGET_OK],
     [JoinState.OFFER_FROM_TARGET, JoinState.JOINED]),
    (JoinMode.DIRECT, False, [JoinInput.FAILED], [JoinState.FAILED]),
    (JoinMode.DIRECT, True, [JoinInput.TARGET_OK, JoinInput.FAILED],
     [JoinState.OFFER_TO_TRANSFEREE, JoinState.FAILED]),
])
def test_join_transitions(mode: JoinMode, answered: bool, inputs: list[JoinInput],
                          states: list[JoinState]) -> None:
    join = Join.start(mode, answered)
    assert join.state is (JoinState.OFFER_FROM_TARGET if answered else JoinState.WAIT_ANSWER)
    assert [join.go(i) for i in inputs] == states
    assert join.done


def test_a_join_refuses_inputs_out_of_order() -> None:
    join = Join.start(JoinMode.RELAY, target_answered=False)
    with pytest.raises(JoinError):
        join.go(JoinInput.TARGET_OK)  # the target has not answered yet
    done = Join.start(JoinMode.RELAY, True)
    done.go(JoinInput.TARGET_OK)
    with pytest.raises(JoinError):
        done.go(JoinInput.FAILED)  # a finished join stays finished


SDP_A = (b"v=0\r\no=alice 100 7 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
SDP_B = (b"v=0\r\no=bob 555 3 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
         b"m=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


def test_another_phones_sdp_keeps_the_dialogs_origin_with_a_higher_version() -> None:
    out = parse_sdp(continue_origin(SDP_A, SDP_B))
    assert (out.origin.username, out.origin.session_id) == ("alice", "100")
    assert out.origin.session_version == 8  # above both 7 and 3
    assert out.media[0].port == 5000  # the media is the new phone's
    assert continue_origin(b"", SDP_B) == SDP_B


def test_a_call_gives_its_callee_away_and_releases_only_the_caller() -> None:
    call = answered_call()
    effects = call.give_away(Side.CALLEE, 9.0, "attended transfer")
    byes = [e for e in effects if isinstance(e, SendRequest)]
    assert len(byes) == 1 and byes[0].toward is Side.CALLER
    assert byes[0].request.method == "BYE"
    assert byes[0].request.call_id == "a-call"
    ended = [e for e in effects if isinstance(e, Ended)]
    assert ended == [Ended(Disposition.ANSWERED, 200, "attended transfer", Side.CALLER)]
    assert call.state is CallState.ENDED and call.next_deadline() is None
    assert call.give_away(Side.CALLEE, 10.0, "again") == []


def test_a_released_caller_gets_487_and_the_target_rings_on_for_the_transfer() -> None:
    """Semi-attended transfer where the transferor hangs up the ringing consultation."""
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 180), 0.5)
    effects = call.release_caller()
    assert [e.response.status for e in effects if isinstance(e, RespondCaller)] == [487]
    assert call.ringing_phase and call.release_caller() == []
    # the ringing goes on silently; the answer is for the call the target is handed to
    assert call.on_response(LegId(0), reply(inv, 180), 1.0) == []
    answered = call.on_response(LegId(0), reply(inv, 200, body=b"sdp"), 2.0)
    assert not [e for e in answered if isinstance(e, RespondCaller)]
    assert [e.leg for e in answered if isinstance(e, Answered)] == [LegId(0)]
    assert call.state is CallState.ANSWERED and call.next_deadline() is None
    # handing the callee over leaves nobody to BYE on the caller's side
    gone = call.give_away(Side.CALLEE, 3.0, "attended transfer")
    assert not [e for e in gone if isinstance(e, SendRequest)]
    assert call.next_deadline() is None and not call.ringing_phase
    assert [e.side for e in gone if isinstance(e, Ended)] == [Side.CALLER]


def test_a_released_caller_is_not_answered_by_voicemail_when_nobody_answers() -> None:
    call = make_call()
    call.exhausted_policy = lambda exhausted: pytest.fail("no forwarding for a handed call")
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.release_caller()
    effects = call.handle_timer(31.0)
    assert not [e for e in effects if isinstance(e, RespondCaller)]
    assert [e.disposition for e in effects if isinstance(e, Ended)] == [Disposition.NO_ANSWER]


def test_the_new_party_of_the_caller_side_is_not_held_to_the_callers_session_timer() -> None:
    """RFC 4028: the caller that agreed a session timer left (transfer); the party that
    took its place never agreed one, so the call must not end for its silence."""
    call = answered_call()
    call.session_interval = 90
    call.refresh_session(2.0)
    call.on_ack(2.1)
    assert call.next_deadline() is not None
    leg = call.answered
    assert leg is not None and leg.dialog is not None
    call.transfer_completed(Side.CALLER, leg.dialog, PHONE_1, "501412", b"", 3.0)
    assert call.next_deadline() is None and call.session_interval is None
