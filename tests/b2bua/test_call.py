"""The Call state machine, driven with messages and a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from switch.b2bua.call import Call, CallState, CallTransitionError
from switch.b2bua.effects import (
    Answered,
    Disposition,
    Ended,
    LegId,
    RespondCaller,
    SendRequest,
    SendStateless,
    Side,
)
from switch.b2bua.legs import LocalAddress, invite_for_callee
from switch.sip import NameAddr, Request, Response, SipUri, make_response, parse_message
from switch.transaction import Peer

LOCAL = LocalAddress("127.0.0.1", 5060, 5061)
CALLER = Peer("UDP", "127.0.0.1", 40000)
PHONE_1 = Peer("UDP", "127.0.0.1", 40001)
PHONE_2 = Peer("TCP", "127.0.0.1", 40002, conn_id=7)

A_INVITE = (
    b"INVITE sip:501411@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Alice\" <sip:501410@127.0.0.1>;tag=at\r\n"
    b"To: <sip:501411@127.0.0.1>\r\n"
    b"Call-ID: a-call\r\n"
    b"CSeq: 5 INVITE\r\n"
    b"Contact: <sip:501410@127.0.0.1:40000>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nsdpA"
)


def a_invite() -> Request:
    msg = parse_message(A_INVITE)
    assert isinstance(msg, Request)
    return msg


def make_call(now: float = 0.0) -> Call:
    return Call(a_invite(), CALLER, LOCAL, now, ring_timeout=30.0,
                answer_sdp=lambda leg, body: b"answer-for-a:" + body)


def b_invite(dest: Peer, call_id: str) -> Request:
    return invite_for_callee(
        request_uri="sip:501411@127.0.0.1:40001", to=NameAddr(SipUri("sip", "127.0.0.1", "501411")),
        caller=NameAddr(SipUri("sip", "127.0.0.1", "501410"), "Alice", (("tag", "bt"),)),
        call_id=call_id, local=LOCAL, dest=dest, body=b"sdpB", max_forwards=69,
        identity_headers=(),
    )


def reply(req: Request, status: int, tag: str = "callee", body: bytes = b"") -> Response:
    headers = [("Contact", "<sip:501411@127.0.0.1:40001>")]
    return make_response(req, status, to_tag=tag, headers=headers, body=body)


def responses_to_caller(effects: Sequence[object]) -> list[Response]:
    return [e.response for e in effects if isinstance(e, RespondCaller)]


def test_ringing_then_answer_then_caller_hangs_up() -> None:
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    assert call.add_leg(inv, PHONE_1) == [SendRequest(inv, PHONE_1, Side.CALLEE, LegId(0))]
    ringing = responses_to_caller(call.on_response(LegId(0), reply(inv, 180), 1.0))
    assert [r.status for r in ringing] == [180]
    assert call.state is CallState.RINGING
    effects = call.on_response(LegId(0), reply(inv, 200, body=b"sdp-of-b"), 2.0)
    ack = next(e for e in effects if isinstance(e, SendStateless))
    ack_msg = parse_message(ack.data)
    assert isinstance(ack_msg, Request) and ack_msg.method == "ACK"
    assert ack_msg.cseq.seq == 1 and ack_msg.to.tag == "callee"
    assert str(ack_msg.uri) == "sip:501411@127.0.0.1:40001"
    ok = responses_to_caller(effects)[0]
    assert ok.status == 200 and ok.body == b"answer-for-a:sdp-of-b"
    assert ok.to.tag == ringing[0].to.tag  # one dialog with the caller
    assert any(isinstance(e, Answered) for e in effects)
    assert call.state is CallState.ANSWERED  # type: ignore[comparison-overlap]
    # 2xx retransmitted to the caller until its ACK (RFC 3261 13.3.1.4)
    assert call.next_deadline() == pytest.approx(2.5)
    again = call.handle_timer(2.5)
    assert isinstance(again[0], SendStateless) and again[0].dest == CALLER
    call.on_ack(2.6)
    assert call.next_deadline() is None
    bye = call.on_bye(Side.CALLER, 10.0)
    sends = [e for e in bye if isinstance(e, SendRequest)]
    assert sends[0].leg is None and sends[0].toward is Side.CALLEE and sends[0].request.method == "BYE"
    assert sends[0].request.to.tag == "callee"
    ended = next(e for e in bye if isinstance(e, Ended))
    assert ended.disposition is Disposition.ANSWERED and ended.side is Side.CALLER
    assert call.state is CallState.ENDED


def test_forking_first_answer_wins_others_cancelled() -> None:
    call = make_call()
    inv1, inv2 = b_invite(PHONE_1, "b1"), b_invite(PHONE_2, "b2")
    call.add_leg(inv1, PHONE_1)
    call.add_leg(inv2, PHONE_2)
    call.on_response(LegId(0), reply(inv1, 180, "t1"), 0.5)
    call.on_response(LegId(1), reply(inv2, 180, "t2"), 0.5)
    effects = call.on_response(LegId(1), reply(inv2, 200, "t2"), 1.0)
    cancels = [e for e in effects if isinstance(e, SendRequest) and e.request.method == "CANCEL"]
    assert len(cancels) == 1 and cancels[0].dest == PHONE_1
    assert cancels[0].request.top_via.branch == inv1.top_via.branch  # RFC 3261 9.1
    # the cancelled fork answers 487: nothing more reaches the caller
    assert call.on_response(LegId(0), reply(inv1, 487, "t1"), 1.1) == []
    # a late 2xx from the cancelled fork is ACKed and hung up
    late = call.on_response(LegId(0), reply(inv1, 200, "t1"), 1.2)
    assert [type(e).__name__ for e in late] == ["SendStateless", "SendRequest"]


@pytest.mark.parametrize(("statuses", "final", "disposition"), [
    ([486], 486, Disposition.BUSY),
    ([603], 603, Disposition.REJECTED),
    ([486, 404], 486, Disposition.BUSY),
    ([500, 503], 500, Disposition.FAILED),
])
def test_all_legs_fail(statuses: list[int], final: int, disposition: Disposition) -> None:
    call = make_call()
    invites = [b_invite(PHONE_1, f"b{i}") for i in range(len(statuses))]
    for inv in invites:
        call.add_leg(inv, PHONE_1)
    effects: list[object] = []
    for i, (inv, status) in enumerate(zip(invites, statuses, strict=True)):
        effects = list(call.on_response(LegId(i), reply(inv, status), 1.0))
    assert [r.status for r in responses_to_caller(effects)] == [final]
    ended = next(e for e in effects if isinstance(e, Ended))
    assert ended.disposition is disposition


def test_caller_cancel_cancels_legs_and_answers_487() -> None:
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 180), 0.5)
    effects = call.on_cancel(1.0)
    assert [e.request.method for e in effects if isinstance(e, SendRequest)] == ["CANCEL"]
    assert [r.status for r in responses_to_caller(effects)] == [487]
    assert call.state is CallState.ENDED
    assert call.on_cancel(1.1) == []  # a second CANCEL changes nothing


def test_ring_timeout_gives_480_and_cancels() -> None:
    call = make_call(now=100.0)
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    assert call.next_deadline() == pytest.approx(130.0)
    effects = call.handle_timer(130.0)
    assert [r.status for r in responses_to_caller(effects)] == [480]
    assert next(e for e in effects if isinstance(e, Ended)).disposition is Disposition.NO_ANSWER


def test_unreachable_leg_times_out_408() -> None:
    call = make_call()
    call.add_leg(b_invite(PHONE_1, "b1"), PHONE_1)
    effects = call.on_leg_timeout(LegId(0), 32.0)
    assert [r.status for r in responses_to_caller(effects)] == [408]


def test_callee_hangs_up_bye_goes_to_caller_contact() -> None:
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 200), 1.0)
    effects = call.on_bye(Side.CALLEE, 5.0)
    bye = next(e for e in effects if isinstance(e, SendRequest))
    assert bye.leg is None and bye.toward is Side.CALLER and bye.dest == CALLER
    assert str(bye.request.uri) == "sip:501410@127.0.0.1:40000"
    assert bye.request.call_id == "a-call"
    assert bye.request.from_.tag == call.a_to_tag and bye.request.to.tag == "at"


def test_missing_ack_ends_the_call() -> None:
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 200), 1.0)
    t = 1.0
    effects: list[object] = []
    while call.state is CallState.ANSWERED and t < 100:
        t = call.next_deadline() or 100
        effects = list(call.handle_timer(t))
    assert call.state is CallState.ENDED
    assert t == pytest.approx(1.0 + 64 * 0.5)
    assert sum(isinstance(e, SendRequest) for e in effects) == 2  # BYE both sides


def test_bad_transition_is_a_named_error() -> None:
    call = make_call()
    call.state = CallState.ENDED
    with pytest.raises(CallTransitionError):
        call._go(__import__("switch.b2bua.call", fromlist=["CallInput"]).CallInput.ANSWER)


def test_session_timer_ends_a_call_whose_caller_vanished() -> None:
    call = make_call()
    call.session_interval = 90
    call.session_headers = (("Session-Expires", "90;refresher=uac"), ("Require", "timer"))
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    effects = call.on_response(LegId(0), reply(inv, 200), 10.0)
    ok = responses_to_caller(effects)[0]
    assert ok.headers.get("Session-Expires") == "90;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    call.on_ack(10.1)
    # a refresh at 50 s moves the deadline: 90 - min(32, 90/3) = 60 s after it
    call.refresh_session(50.0)
    assert call.next_deadline() == pytest.approx(110.0)
    assert call.handle_timer(109.0) == []
    ended = call.handle_timer(110.0)
    assert call.state is CallState.ENDED
    assert sum(isinstance(e, SendRequest) and e.request.method == "BYE" for e in ended) == 2
    assert next(e for e in ended if isinstance(e, Ended)).cause.startswith("session timer")


def test_sequential_hunt_moves_on_after_each_step_and_on_failure() -> None:
    call = make_call(now=0.0)
    first, second, third = (b_invite(PHONE_1, "h1"), b_invite(PHONE_2, "h2"),
                            b_invite(PHONE_1, "h3"))
    effects = call.start_hunt([[(first, PHONE_1)], [(second, PHONE_2)], [(third, PHONE_1)]],
                              10.0, 0.0)
    assert [e.request.call_id for e in effects if isinstance(e, SendRequest)] == ["h1"]
    assert call.next_deadline() == pytest.approx(10.0)
    # the first member rings for its step, then is cancelled and the second rings
    moved = call.handle_timer(10.0)
    sent = [(e.request.method, e.request.call_id) for e in moved if isinstance(e, SendRequest)]
    assert sent == [("CANCEL", "h1"), ("INVITE", "h2")]
    # the second is busy: the third rings at once
    after_busy = call.on_response(LegId(1), reply(second, 486), 11.0)
    assert [e.request.call_id for e in after_busy if isinstance(e, SendRequest)] == ["h3"]
    assert call.on_response(LegId(0), reply(first, 487), 11.5) == []  # the cancelled one's 487
    ok = call.on_response(LegId(2), reply(third, 200), 12.0)
    assert [r.status for r in responses_to_caller(ok)] == [200]
    assert call.answered_leg == LegId(2)


def test_hunt_ends_with_the_best_failure_when_everyone_declines() -> None:
    call = make_call()
    a, b = b_invite(PHONE_1, "x1"), b_invite(PHONE_2, "x2")
    call.start_hunt([[(a, PHONE_1)], [(b, PHONE_2)]], 10.0, 0.0)
    call.on_response(LegId(0), reply(a, 486), 1.0)
    effects = call.on_response(LegId(1), reply(b, 480), 2.0)
    assert [r.status for r in responses_to_caller(effects)] == [486]


def test_unacked_call_ends_once_and_leaves_no_timer() -> None:
    """Issue 20, critical: after the 64*T1 ACK deadline the call ended but kept a deadline
    in the past, so the adapter's timer fired again at once, forever (a log line each time)."""
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 200), 1.0)
    fired = 0
    t = 1.0
    while (deadline := call.next_deadline()) is not None and fired < 1000:
        t = deadline
        call.handle_timer(t)
        fired += 1
    assert call.state is CallState.ENDED
    assert t == pytest.approx(1.0 + 64 * 0.5)
    assert call.next_deadline() is None
    assert fired < 20  # the retransmissions (T1 doubling to T2) then the end, nothing more
    assert call.handle_timer(t + 1.0) == []


def test_configured_t1_t2_pace_the_2xx_retransmissions_and_the_ack_wait() -> None:
    """The configured T1/T2 reach the Call (they used to be the defaults, always)."""
    call = Call(a_invite(), CALLER, LOCAL, 0.0, ring_timeout=30.0,
                answer_sdp=lambda leg, body: body, t1=0.1, t2=0.4)
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 200), 1.0)
    times: list[float] = []
    while (deadline := call.next_deadline()) is not None and len(times) < 100:
        effects = call.handle_timer(deadline)
        if any(isinstance(e, SendStateless) for e in effects):
            times.append(round(deadline - 1.0, 3))
    assert times[:4] == [0.1, 0.3, 0.7, 1.1]  # T1, then doubling, capped at T2
    assert call.state is CallState.ENDED and call.ended_at == pytest.approx(1.0 + 64 * 0.1)


def test_the_exhausted_policy_may_ring_more_legs() -> None:
    """The forwarding/voicemail seam: when every leg failed, the policy picks a next step."""
    from switch.b2bua.decisions import Exhausted, GiveUp, RingMore

    seen: list[Exhausted] = []
    forward = b_invite(PHONE_2, "fwd")

    def policy(ex: Exhausted) -> RingMore | GiveUp:
        seen.append(ex)
        return RingMore((((forward, PHONE_2),),), 20.0) if len(seen) == 1 else GiveUp(486)

    call = Call(a_invite(), CALLER, LOCAL, 0.0, ring_timeout=30.0,
                answer_sdp=lambda leg, body: body, exhausted_policy=policy)
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    effects = call.on_response(LegId(0), reply(inv, 486), 1.0)
    assert seen == [Exhausted(486, no_answer=False)]
    assert [(e.request.call_id, e.leg) for e in effects if isinstance(e, SendRequest)] == \
        [("fwd", LegId(1))]
    assert responses_to_caller(effects) == [] and call.ringing_phase
    assert call.next_deadline() == pytest.approx(21.0)  # the next step rings its own time
    ended = call.handle_timer(21.0)  # nobody answered the forward either
    assert seen[-1] == Exhausted(480, no_answer=True)
    assert [r.status for r in responses_to_caller(ended)] == [486]
    assert any(isinstance(e, Ended) for e in ended) and call.state is CallState.ENDED


def test_a_completed_transfer_replaces_the_transferor() -> None:
    from switch.b2bua.effects import Transferred
    from switch.dialog.dialog import Dialog

    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 200), 1.0)
    call.on_ack(1.1)
    target_invite = b_invite(PHONE_2, "t1")
    dialog = Dialog.uac(target_invite, reply(target_invite, 200, tag="target"))
    effects = call.transfer_completed(Side.CALLEE, dialog, PHONE_2, "502411", b"sdp-t", 5.0)
    bye = next(e for e in effects if isinstance(e, SendRequest))
    assert bye.request.method == "BYE" and bye.request.call_id == "b1" and bye.dest == PHONE_1
    assert Transferred(Side.CALLEE, "502411", "b1", "t1", b"sdp-t") in effects
    # the target is now the callee: the caller's BYE goes to it
    out = call.on_bye(Side.CALLER, 9.0)
    bye2 = next(e for e in out if isinstance(e, SendRequest))
    assert bye2.request.call_id == "t1" and bye2.dest == PHONE_2


def test_callee_media_is_an_effect_before_the_callers_answer() -> None:
    """The relay latches onto the callee's SDP (early or final) before the caller hears."""
    from switch.b2bua.effects import CalleeMedia

    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    early = call.on_response(LegId(0), reply(inv, 183, body=b"early"), 0.5)
    assert [type(e).__name__ for e in early] == ["CalleeMedia", "RespondCaller"]
    ok = call.on_response(LegId(0), reply(inv, 200, body=b"final"), 1.0)
    names = [type(e).__name__ for e in ok]
    assert names.index("CalleeMedia") < names.index("RespondCaller")
    assert CalleeMedia(LegId(0), b"final") in ok


def test_the_exhausted_policy_may_answer_with_an_application() -> None:
    """The voicemail seam: nobody answered, the caller is answered by an application."""
    from switch.b2bua.decisions import AnswerWith, Exhausted
    from switch.b2bua.effects import StartApplication

    call = Call(a_invite(), CALLER, LOCAL, 0.0, ring_timeout=30.0,
                answer_sdp=lambda leg, body: body,
                exhausted_policy=lambda ex: AnswerWith("voicemail"))
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    call.on_response(LegId(0), reply(inv, 180), 1.0)
    effects = call.handle_timer(30.0)  # the ring timeout
    assert [r.request.method for r in effects if isinstance(r, SendRequest)] == ["CANCEL"]
    assert StartApplication("voicemail") in effects and responses_to_caller(effects) == []
    assert call.ringing_phase and call.next_deadline() is None  # waits for the adapter
    # the cancelled leg's 487 does not exhaust the call again (issue 13)
    assert call.on_response(LegId(0), reply(inv, 487), 30.1) == []
    assert call.ringing_phase
    answered = call.answer_locally(b"sdp-of-the-switch", 30.2)
    assert [r.status for r in responses_to_caller(answered)] == [200]
    assert call.state is CallState.ANSWERED and call.answered_leg is None
    assert Exhausted(480, no_answer=True) != Exhausted(486, no_answer=False)


def test_the_2xx_allow_lists_what_a_call_dialog_accepts() -> None:
    """Allow tells the truth (issue 19): INFO (DTMF) and REFER are handled, NOTIFY and PRACK
    are not; Replaces is supported (RFC 3891 6.1: REFER and INVITE with Replaces, issue 16)."""
    call = make_call()
    inv = b_invite(PHONE_1, "b1")
    call.add_leg(inv, PHONE_1)
    ok = responses_to_caller(call.on_response(LegId(0), reply(inv, 200), 1.0))[0]
    allow = {m.strip() for m in (ok.headers.get("Allow") or "").split(",")}
    assert {"INVITE", "ACK", "BYE", "CANCEL", "UPDATE", "INFO", "REFER"} <= allow
    assert not {"NOTIFY", "PRACK"} & allow
    assert "replaces" in (inv.headers.get("Supported") or "")


def test_a_leg_answered_for_an_application_becomes_the_callee() -> None:
    """ivr Transfer: an inner call rang 501411 for the application that answered the
    caller; the answered leg is adopted, and its BYE then ends the caller's call."""
    call = make_call()
    call.answer_locally(b"sdp-of-the-switch", 1.0)
    call.on_ack(1.1)
    inner = make_call(2.0)
    inv = b_invite(PHONE_1, "b-divert")
    inner.add_leg(inv, PHONE_1)
    inner.on_response(LegId(0), reply(inv, 200, body=b"sdp-of-b"), 3.0)
    answered = inner.answered
    assert answered is not None and answered.dialog is not None
    leg_id = call.adopt_callee(answered)
    assert call.answered_leg == leg_id and call.answered is not None
    assert call.dialog_of(Side.CALLEE) == (answered.dialog, PHONE_1)
    with pytest.raises(CallTransitionError):
        call.adopt_callee(answered)  # one callee only
    effects = call.on_bye(Side.CALLEE, 10.0)
    bye = next(e for e in effects if isinstance(e, SendRequest))
    assert bye.request.method == "BYE" and bye.dest == CALLER
    assert call.state is CallState.ENDED


def test_a_ringing_call_cannot_adopt_a_callee() -> None:
    call, inner = make_call(), make_call()
    inv = b_invite(PHONE_1, "b-x")
    inner.add_leg(inv, PHONE_1)
    inner.on_response(LegId(0), reply(inv, 200), 1.0)
    assert inner.answered is not None
    with pytest.raises(CallTransitionError):
        call.adopt_callee(inner.answered)
