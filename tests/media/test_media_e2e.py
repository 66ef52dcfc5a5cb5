"""End to end over real UDP on 127.0.0.1: a test-side RTP peer talks to the media engine."""

from __future__ import annotations

import asyncio
import itertools
import wave
from collections.abc import AsyncIterator

import numpy as np
import pytest
from media_peer import RtpPeer, dominant_frequency, voiced

from media import DtmfSource, MediaEngine, StopReason

_ranges = itertools.count(0)


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = 31000 + 200 * (next(_ranges) % 40)
    eng = MediaEngine("127.0.0.1", base, base + 199, rtcp_interval=0.2)
    await eng.start()
    yield eng
    await eng.stop()


def tone(freq: float, seconds: float, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return np.round(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def test_play_prompt_peer_hears_1khz(engine: MediaEngine) -> None:
    peer = await RtpPeer.create()
    ep = await engine.open_endpoint()
    ep.set_remote(*peer.addr, 0, "PCMU", 101)
    ep.play(tone(1000, 0.8))
    assert await asyncio.wait_for(ep.wait_played(), 3) is True
    await asyncio.sleep(0.05)
    heard = voiced(peer.audio())
    assert len(heard) >= 0.75 * 8000
    assert abs(dominant_frequency(heard) - 1000) < 20
    assert ep.stats().packets_sent >= 40
    await ep.close()
    peer.close()


async def test_dtmf_rfc4733_then_inband_each_once_in_order(engine: MediaEngine) -> None:
    peer = await RtpPeer.create()
    ep = await engine.open_endpoint()
    ep.set_remote(*peer.addr, 0, "PCMU", 101)
    peer.remote = (ep.local_host, ep.local_port)
    ep.play(tone(1000, 10))  # interruptible prompt: the first digit stops it
    digits = "0123456789*#"
    await peer.send_rfc4733(digits)
    await peer.send_inband(digits)
    got = []
    while (d := await ep.next_digit(0.5)) is not None:
        got.append(d)
    assert "".join(d.digit for d in got) == digits + digits
    assert all(d.source is DtmfSource.RFC4733 for d in got[:12])
    assert all(d.source is DtmfSource.INBAND for d in got[12:])
    assert all(abs(d.duration_ms - 100) <= 10 for d in got[:12])
    assert all(50 <= d.duration_ms <= 160 for d in got[12:])
    assert not ep.session.playing
    await ep.close()
    peer.close()


async def test_record_peer_tone_to_wav(engine: MediaEngine, tmp_path) -> None:
    peer = await RtpPeer.create()
    ep = await engine.open_endpoint()
    ep.set_remote(*peer.addr, 0, "PCMU", 101)
    peer.remote = (ep.local_host, ep.local_port)
    path = tmp_path / "msg.wav"
    ep.start_recording(str(path), max_seconds=1.0)
    await peer.send_tone(440, 1.4)
    result = await asyncio.wait_for(ep.wait_recording(), 3)
    assert result is not None and result.saved and result.reason is StopReason.MAX_LENGTH
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert 0.95 <= len(pcm) / 8000 <= 1.0
    assert abs(dominant_frequency(voiced(pcm)) - 440) < 0.02 * 440
    assert not list(tmp_path.glob("*.part"))
    await ep.close()
    peer.close()


async def test_recording_stops_on_dtmf(engine: MediaEngine, tmp_path) -> None:
    peer = await RtpPeer.create()
    ep = await engine.open_endpoint()
    ep.set_remote(*peer.addr, 0, "PCMU", 101)
    peer.remote = (ep.local_host, ep.local_port)
    ep.start_recording(str(tmp_path / "m.wav"), max_seconds=5.0)
    await peer.send_tone(440, 0.5)
    await peer.send_rfc4733("#")
    result = await asyncio.wait_for(ep.wait_recording(), 3)
    assert result is not None and result.reason is StopReason.DTMF and result.digit == "#"
    assert 0.3 < result.duration_s < 0.8
    await ep.close()
    peer.close()


async def test_echo_returns_peer_tone(engine: MediaEngine) -> None:
    peer = await RtpPeer.create()
    ep = await engine.open_endpoint()
    ep.set_remote(*peer.addr, 0, "PCMU", 101)
    peer.remote = (ep.local_host, ep.local_port)
    ep.echo(True)
    await peer.send_tone(600, 1.0)
    await asyncio.sleep(0.15)
    heard = voiced(peer.audio())
    assert len(heard) > 0.8 * 8000
    assert abs(dominant_frequency(heard) - 600) < 0.02 * 600
    await ep.close()
    peer.close()


@pytest.mark.parametrize(("codec_a", "codec_b"), [("PCMU", "PCMU"), ("PCMU", "PCMA")])
async def test_relay_both_ways_with_latching(
    engine: MediaEngine, codec_a: str, codec_b: str
) -> None:
    pt = {"PCMU": 0, "PCMA": 8}
    a = await RtpPeer.create(codec_a, pt[codec_a])
    b = await RtpPeer.create(codec_b, pt[codec_b])
    intruder = await RtpPeer.create(codec_a, pt[codec_a])
    relay = await engine.open_relay()
    # the phones are behind a NAT (their SDP ports are not where media comes from); their
    # signalling came from 127.0.0.1, so a source on that IP may be learned after probation
    relay.leg_a.set_remote("127.0.0.1", 9, pt[codec_a], codec_a, nat_host="127.0.0.1")
    relay.leg_b.set_remote("127.0.0.1", 11, pt[codec_b], codec_b, nat_host="127.0.0.1")
    a.remote = (relay.leg_a.local_host, relay.leg_a.local_port)
    b.remote = (relay.leg_b.local_host, relay.leg_b.local_port)
    intruder.remote = a.remote

    async def intrude() -> None:
        await asyncio.sleep(0.3)
        await intruder.send_tone(3000, 0.4)

    await asyncio.gather(a.send_tone(500, 1.0), b.send_tone(800, 1.0), intrude())
    await asyncio.sleep(0.1)
    assert relay.leg_a.latched == a.addr and relay.leg_b.latched == b.addr
    heard_by_b, heard_by_a = voiced(b.audio()), voiced(a.audio())
    assert len(heard_by_b) > 0.8 * 8000 and len(heard_by_a) > 0.8 * 8000
    assert abs(dominant_frequency(heard_by_b) - 500) < 10
    assert abs(dominant_frequency(heard_by_a) - 800) < 16
    assert not intruder.received
    sa, sb = relay.stats()
    assert sa.dropped >= 20  # the intruder's packets (and probation) were refused
    assert sa.packets_received >= 45 and sb.packets_sent >= 45
    await relay.close()
    for p in (a, b, intruder):
        p.close()


async def test_rtcp_reports_between_two_endpoints(engine: MediaEngine) -> None:
    e1 = await engine.open_endpoint()
    e2 = await engine.open_endpoint()
    e1.set_remote(e2.local_host, e2.local_port, 8, "PCMA", None)
    e2.set_remote(e1.local_host, e1.local_port, 8, "PCMA", None)
    e1.play_tone(700)
    e2.play_tone(900)
    await asyncio.sleep(1.0)
    s1 = e1.stats()
    assert s1.packets_received > 30 and s1.packets_lost == 0
    assert s1.remote_jitter_ms is not None and s1.remote_packets_lost == 0
    assert s1.rtt_ms is not None and 0 <= s1.rtt_ms < 100
    await e1.close()
    await e2.close()
