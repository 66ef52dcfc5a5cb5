"""Hold in the relay: the hold state table, the music's RTP stream, and a relay on loopback
where the held party hears the shared music on hold instead of the holder."""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from media_peer import RtpPeer

from media import MediaEngine, MusicOnHold
from media.hold import (
    TRANSITIONS,
    HoldState,
    HoldStream,
    Party,
    next_state,
    plan_for,
)
from media.rtp import parse_rtp

_ranges = itertools.count(secrets.randbelow(40))


def music(seconds: float = 1.0) -> MusicOnHold:
    t = np.arange(int(8000 * seconds)) / 8000
    return MusicOnHold(np.round(6000 * np.sin(2 * np.pi * 523.25 * t)).astype(np.int16))


# --- the state table (pure) ----------------------------------------------------------------------
def test_the_table_is_total() -> None:
    for state in HoldState:
        for party in Party:
            for holds in (True, False):
                assert (state, party, holds) in TRANSITIONS


def test_each_party_holds_and_resumes_on_its_own() -> None:
    s = next_state(HoldState.TALKING, Party.A, True)
    assert s is HoldState.HELD_BY_A
    assert next_state(s, Party.A, True) is HoldState.HELD_BY_A  # a repeated hold offer
    assert next_state(s, Party.B, False) is HoldState.HELD_BY_A  # the held one refreshes
    s = next_state(s, Party.B, True)
    assert s is HoldState.HELD_BY_BOTH
    s = next_state(s, Party.A, False)
    assert s is HoldState.HELD_BY_B
    assert next_state(s, Party.B, False) is HoldState.TALKING


def test_who_hears_what() -> None:
    talking = plan_for(HoldState.TALKING)
    assert talking.forward_a_to_b and talking.forward_b_to_a
    assert not (talking.music_to_a or talking.music_to_b)
    held_by_a = plan_for(HoldState.HELD_BY_A)
    # the holder said it will not receive (answered recvonly): nothing goes to it
    assert not (held_by_a.forward_a_to_b or held_by_a.forward_b_to_a or held_by_a.music_to_a)
    assert held_by_a.music_to_b
    assert plan_for(HoldState.HELD_BY_B).music_to_a
    both = plan_for(HoldState.HELD_BY_BOTH)
    assert not (both.music_to_a or both.music_to_b or both.forward_a_to_b)


# --- the music's RTP stream (pure) ----------------------------------------------------------------
def test_hold_stream_is_proper_rtp_from_the_shared_encoding() -> None:
    moh = music()
    stream = HoldStream(random.Random(7))
    assert stream.packet(0.0) is None  # nothing before start
    stream.start(moh, "PCMA", 8)
    packets = [parse_rtp(stream.packet(10.0 + 0.02 * i) or b"") for i in range(60)]
    assert [p.marker for p in packets[:2]] == [True, False]  # RFC 3551 4.1: first packet only
    assert not any(p.marker for p in packets[1:])
    assert {p.ssrc for p in packets} == {stream.ssrc}
    assert {p.payload_type for p in packets} == {8}
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(packets))
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160
               for a, b in itertools.pairwise(packets))
    encoded = moh.encoded("PCMA")  # slices of the one encoding every listener shares
    assert packets[0].payload == encoded[:160] and packets[1].payload == encoded[160:320]
    assert packets[50].payload == encoded[:160]  # the 1 s track (50 frames) loops


def test_hold_stream_restart_marks_and_keeps_time() -> None:
    stream = HoldStream(random.Random(3))
    stream.start(music(), "PCMU", 0)
    first = parse_rtp(stream.packet(1.0) or b"")
    last = parse_rtp(stream.packet(1.02) or b"")
    stream.start(music(), "PCMU", 0)  # a second hold, 5 s later
    again = parse_rtp(stream.packet(6.02) or b"")
    assert again.marker and again.ssrc == first.ssrc
    assert (again.sequence - last.sequence) & 0xFFFF == 1  # the sequence continues
    assert (again.timestamp - last.timestamp) & 0xFFFFFFFF == 5 * 8000  # the gap is time


# --- a relay on loopback ------------------------------------------------------------------
@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = 40000 + 200 * (next(_ranges) % 40)
    eng = MediaEngine("127.0.0.1", base, base + 199, rtcp_interval=0.2)
    await eng.start()
    yield eng
    await eng.stop()


async def wait_for(cond: object, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return bool(cond())  # type: ignore[operator]


def ssrcs(peer: RtpPeer, since: int = 0) -> set[int]:
    return {parse_rtp(d).ssrc for d, _a, _t in peer.received[since:]}


async def test_held_party_hears_music_and_nothing_of_the_holder(engine: MediaEngine) -> None:
    relay = await engine.open_relay()
    a, b = await RtpPeer.create(), await RtpPeer.create()
    try:
        relay.leg_a.set_remote(*a.addr, 0, "PCMU")
        relay.leg_b.set_remote(*b.addr, 0, "PCMU")
        a.remote = (relay.leg_a.local_host, relay.leg_a.local_port)
        b.remote = (relay.leg_b.local_host, relay.leg_b.local_port)
        moh = music()
        # talking: each hears the other
        await asyncio.gather(a.send_tone(700, 0.3), b.send_tone(900, 0.3))
        assert await wait_for(lambda: a.ssrc in ssrcs(b) and b.ssrc in ssrcs(a))

        since_hold = len(b.received)
        relay.set_hold(relay.leg_a, True, moh)  # A holds (its offer was sendonly)
        assert relay.hold_state is HoldState.HELD_BY_A
        await asyncio.sleep(0.1)  # packets relayed before the hold arrive meanwhile
        seen_a, seen_b = len(a.received), len(b.received)
        await asyncio.gather(a.send_tone(700, 0.6), b.send_tone(900, 0.6))
        assert await wait_for(lambda: len(b.received) - seen_b >= 20)
        assert a.ssrc not in ssrcs(b, seen_b)  # nothing of the holder
        assert len(ssrcs(b, seen_b)) == 1
        on_hold = [p for p in (parse_rtp(d) for d, _x, _t in b.received[since_hold:])
                   if p.ssrc != a.ssrc]
        assert on_hold[0].marker and not any(p.marker for p in on_hold[1:])
        frames = moh.encoded("PCMU")
        assert on_hold[0].payload == frames[:160] and on_hold[1].payload == frames[160:320]
        assert len(a.received) == seen_a  # the holder gets nothing (it asked so)

        relay.set_hold(relay.leg_a, False, moh)  # A resumes
        assert relay.hold_state is HoldState.TALKING
        await asyncio.sleep(0.1)
        seen_a, seen_b = len(a.received), len(b.received)
        await asyncio.gather(a.send_tone(700, 0.3), b.send_tone(900, 0.3))
        assert await wait_for(lambda: a.ssrc in ssrcs(b, seen_b) and b.ssrc in ssrcs(a, seen_a))
        await asyncio.sleep(0.1)
        assert ssrcs(b, seen_b) == {a.ssrc}  # the music stopped
    finally:
        a.close()
        b.close()
        await relay.close()


async def test_callee_holds_caller_hears_music_in_its_codec(engine: MediaEngine) -> None:
    relay = await engine.open_relay()
    a, b = await RtpPeer.create("PCMA", 8), await RtpPeer.create("PCMA", 8)
    try:
        relay.leg_a.set_remote(*a.addr, 8, "PCMA")
        relay.leg_b.set_remote(*b.addr, 8, "PCMA")
        moh = music()
        relay.set_hold(relay.leg_b, True, moh)
        assert await wait_for(lambda: len(a.received) >= 10)
        assert not b.received
        got = [parse_rtp(d) for d, _x, _t in a.received]
        assert {p.payload_type for p in got} == {8}
        assert got[0].payload == moh.encoded("PCMA")[:160]
        relay.set_hold(relay.leg_b, False, moh)
        await asyncio.sleep(0.1)
        count = len(a.received)
        await asyncio.sleep(0.2)
        assert len(a.received) == count  # back to relaying: the relay sends nothing itself
    finally:
        a.close()
        b.close()
        await relay.close()


async def test_closing_a_relay_on_hold_stops_its_music(engine: MediaEngine) -> None:
    relay = await engine.open_relay()
    relay.leg_a.set_remote("127.0.0.1", 9, 0, "PCMU")
    relay.leg_b.set_remote("127.0.0.1", 9, 0, "PCMU")
    relay.set_hold(relay.leg_a, True, music())
    assert relay.leg_b.playing_music
    await relay.close()
    assert not relay.leg_b.playing_music
    assert len(engine.clock._callbacks) == 0
