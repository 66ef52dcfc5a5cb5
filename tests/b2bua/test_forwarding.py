"""Personal forwarding, pure (switch.b2bua.forwarding): which forwarding an exhausted call
meets, the policy wrapping the next one, and the Diversion/History-Info header text."""

from __future__ import annotations

from dialplan.user_settings import UserSettings
from switch.b2bua.decisions import AnswerWith, Exhausted, GiveUp, NextStep, RingMore, give_up
from switch.b2bua.forwarding import (
    Diversion,
    ForwardReason,
    diversion_header,
    forwarding_headers,
    forwarding_policy,
    history_info_header,
    trigger,
)

ALICE = "sip:+33562070410@acme.example;user=phone"
BRUNO = "sip:+33562070411@acme.example;user=phone"
MOBILE = "sip:+33612345678@127.0.0.1:5999;user=phone"
RING = RingMore(groups=((),), ring_seconds=20.0)  # a stand-in: the test checks identity


def test_triggers() -> None:
    assert trigger(Exhausted(486, no_answer=False)) is ForwardReason.BUSY
    assert trigger(Exhausted(600, no_answer=False)) is ForwardReason.BUSY
    assert trigger(Exhausted(480, no_answer=True)) is ForwardReason.NO_ANSWER
    assert trigger(Exhausted(408, no_answer=False)) is ForwardReason.UNREACHABLE
    assert trigger(Exhausted(503, no_answer=False)) is ForwardReason.UNREACHABLE
    assert trigger(Exhausted(603, no_answer=False)) is None  # declined: not forwarded


def test_busy_forwards_once_then_the_next_policy_decides() -> None:
    seen: list[tuple[ForwardReason, str]] = []

    def ring(reason: ForwardReason, number: str) -> RingMore | None:
        seen.append((reason, number))
        return RING

    def voicemail(ex: Exhausted) -> NextStep:
        return AnswerWith("voicemail")

    policy = forwarding_policy(UserSettings(forward_busy="501411"), ring, voicemail)
    assert policy(Exhausted(486, no_answer=False)) is RING
    assert seen == [(ForwardReason.BUSY, "501411")]
    # the forwarded legs were exhausted in turn: voicemail, not a second forwarding
    assert policy(Exhausted(486, no_answer=False)) == AnswerWith("voicemail")
    assert len(seen) == 1


def test_no_matching_forwarding_goes_to_the_next_policy() -> None:
    def ring(reason: ForwardReason, number: str) -> RingMore | None:
        raise AssertionError("nothing to forward")

    policy = forwarding_policy(UserSettings(forward_busy="501411"), ring, give_up)
    assert policy(Exhausted(480, no_answer=True)) == GiveUp(480, "No Answer")


def test_nothing_to_ring_at_the_destination_falls_through() -> None:
    policy = forwarding_policy(UserSettings(forward_no_answer="501411"),
                               lambda r, n: None, give_up)
    assert policy(Exhausted(480, no_answer=True)) == GiveUp(480, "No Answer")


def test_each_condition_uses_its_own_destination() -> None:
    settings = UserSettings(forward_busy="1", forward_no_answer="2", forward_unreachable="3")
    for exhausted, number in ((Exhausted(486, False), "1"), (Exhausted(480, True), "2"),
                              (Exhausted(408, False), "3")):
        seen: list[str] = []

        def ring(reason: ForwardReason, n: str, seen: list[str] = seen) -> RingMore | None:
            seen.append(n)
            return RING

        forwarding_policy(settings, ring)(exhausted)
        assert seen == [number]


def test_diversion_header_rfc5806() -> None:
    assert diversion_header([Diversion(ALICE, ForwardReason.ALWAYS)]) == (
        "<sip:+33562070410@acme.example;user=phone>;reason=unconditional;counter=1")
    two = diversion_header([Diversion(ALICE, ForwardReason.ALWAYS),
                            Diversion(BRUNO, ForwardReason.BUSY)])
    # the most recent diversion first (RFC 5806 section 4)
    assert two.startswith(f"<{BRUNO}>;reason=user-busy;counter=2, <{ALICE}>;")


def test_history_info_rfc7044_with_rfc4458_causes() -> None:
    text = history_info_header([Diversion(ALICE, ForwardReason.ALWAYS)], MOBILE)
    assert text == (f"<{ALICE}>;index=1, "
                    "<sip:+33612345678@127.0.0.1:5999;user=phone;cause=302>;index=1.1;mp=1")
    chain = history_info_header([Diversion(ALICE, ForwardReason.BUSY),
                                 Diversion(BRUNO, ForwardReason.NO_ANSWER)], MOBILE)
    assert chain.split(", ") == [
        f"<{ALICE}>;index=1",
        f"<{BRUNO};cause=486>;index=1.1;mp=1",
        "<sip:+33612345678@127.0.0.1:5999;user=phone;cause=408>;index=1.1.1;mp=1.1",
    ]


def test_no_hops_no_headers() -> None:
    assert forwarding_headers((), MOBILE) == ()
    names = [n for n, _ in forwarding_headers((Diversion(ALICE, ForwardReason.ALWAYS),), MOBILE)]
    assert names == ["Diversion", "History-Info"]
