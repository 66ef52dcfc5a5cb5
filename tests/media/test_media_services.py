"""Latching, SRTP, prompt conversion, recorder, player and music on hold, endpoint session."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from media import audio
from media.codecs import get_codec
from media.dtmf import DtmfSender
from media.latch import Latch, LatchState
from media.player import MusicOnHold, PromptPlayer
from media.recorder import Recorder, StopReason
from media.rtp import RtpPacket, parse_rtp
from media.session import DigitReceived, EndpointSession, PlaybackFinished, RemoteDescription
from media.srtp import SrtpContext, SrtpError, new_key_b64

PHONE = ("192.0.2.10", 4000)
NAT = ("203.0.113.5", 61000)
EVIL = ("198.51.100.66", 5004)


def test_latch_sdp_address_latches_at_once() -> None:
    latch = Latch()
    latch.set_expected(PHONE)
    assert latch.target == PHONE and latch.state is LatchState.WAITING
    assert latch.check(PHONE, 1, 0.0) and latch.latched == PHONE


PRIVATE = ("192.168.1.10", 4000)  # a phone behind NAT declares its LAN address


def test_latch_nat_source_after_probation_and_hijack_guard() -> None:
    latch = Latch(probation=3, relatch_after=2.0)
    latch.set_expected(PRIVATE)
    assert not latch.check(NAT, 10, 0.00, 7)
    assert not latch.check(NAT, 11, 0.02, 7)
    assert latch.check(NAT, 12, 0.04, 7) and latch.target == NAT
    for i in range(10):  # a third party while the phone talks: refused
        assert latch.check(NAT, 13 + i, 0.06 + 0.02 * i, 7)
        assert not latch.check(EVIL, 500 + i, 0.06 + 0.02 * i, 9)
    assert latch.target == NAT and latch.rejected >= 12
    # the phone falls silent for longer than relatch_after (a NAT rebinding): a new source
    # behind an unroutable SDP address may be learned, again only after probation
    t = 5.0
    assert not latch.check(EVIL, 1, t, 9) and not latch.check(EVIL, 2, t + 0.02, 9)
    assert latch.check(EVIL, 3, t + 0.04, 9) and latch.target == EVIL


def test_latch_probation_needs_sequential_packets_and_one_ssrc() -> None:
    latch = Latch(probation=3)
    latch.set_expected(PRIVATE)
    for seq in (1, 5, 9, 13):
        assert not latch.check(EVIL, seq, 0.0, 9)
    for i in range(6):  # consecutive numbers, but the SSRC changes every packet
        assert not latch.check(EVIL, 20 + i, 0.1, 100 + i)
    assert latch.state is LatchState.WAITING


def test_srtp_sdes_round_trip() -> None:
    k1, k2 = new_key_b64(), new_key_b64()
    us, them = SrtpContext(k1, k2), SrtpContext(k2, k1)
    rtp = RtpPacket(0, 1, 160, 0x1234, bytes(range(160))).build()
    protected = us.protect(rtp)
    assert len(protected) == len(rtp) + 10 and protected[12:] != rtp[12:]
    assert them.unprotect(protected) == rtp
    with pytest.raises(SrtpError):
        them.unprotect(protected[:-1] + bytes([protected[-1] ^ 1]))
    rtcp_pkt = bytes.fromhex("80c90001") + (0x1234).to_bytes(4, "big")
    assert them.unprotect_rtcp(us.protect_rtcp(rtcp_pkt)) == rtcp_pkt
    with pytest.raises(SrtpError):
        SrtpContext("c2hvcnQ=", k2)


def _write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def _freq(pcm: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(pcm.astype(float)))
    return float(np.argmax(spec) * 8000 / len(pcm))


def test_wav_44k_stereo_converted_once_to_8k_mono_pcm(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = 10000 * np.sin(2 * np.pi * 700 * t) + 5000 * np.sin(2 * np.pi * 6000 * t)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    _write_wav(tmp_path / "in.wav", np.round(stereo), 44100, channels=2)
    pcm = audio.convert_prompt(tmp_path / "in.wav", tmp_path / "out.pcm")
    assert len(pcm) == 8000 and abs(_freq(pcm) - 700) <= 1
    # 6 kHz is above Nyquist at 8 kHz: filtered out, not aliased to 2 kHz
    spec = np.abs(np.fft.rfft(pcm.astype(float)))
    assert spec[2000] < 0.01 * spec[700]
    assert (audio.load_pcm(tmp_path / "out.pcm") == pcm).all()


def test_mp3_through_pydub_and_ffmpeg(tmp_path: Path) -> None:
    pytest.importorskip("pydub")
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    _write_wav(
        tmp_path / "src.wav",
        np.round(8000 * np.sin(2 * np.pi * 500 * np.arange(16000) / 16000)),
        16000,
    )
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(tmp_path / "src.wav"), str(tmp_path / "x.mp3")],
        check=True,
    )
    pcm = audio.decode_any(tmp_path / "x.mp3")
    assert abs(len(pcm) - 8000) < 1200 and abs(_freq(pcm) - 500) <= 2


def test_bad_upload_is_an_audio_error(tmp_path: Path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(audio.AudioError):
        audio.read_wav(tmp_path / "junk.wav")


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "greeting.wav"
    audio.write_wav(target, np.ones(800, np.int16))
    good = target.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("os.fsync", crash)
    with pytest.raises(OSError):
        audio.write_wav(target, np.zeros(8000, np.int16))
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["greeting.wav"]


def test_recorder_stops_on_silence_and_trims(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path / "v.wav"), max_seconds=30, silence_seconds=1.0)
    voice = np.full(160, 3000, np.int16)
    for _ in range(50):
        assert not rec.feed(voice)
    done = [rec.feed(np.zeros(160, np.int16)) for _ in range(50)]
    assert done[-1] and not any(done[:-1]) and rec.reason is StopReason.SILENCE
    result = rec.save()
    assert result.saved and abs(result.duration_s - 1.2) < 0.001


def test_recorder_of_pure_silence_writes_nothing(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path / "s.wav"), max_seconds=0.5)
    while not rec.feed(np.zeros(160, np.int16)):
        pass
    result = rec.save()
    assert rec.reason is StopReason.MAX_LENGTH and not result.saved
    assert not (tmp_path / "s.wav").exists()


def test_prompts_in_sequence_and_looped() -> None:
    a, b = np.full(200, 1, np.int16), np.full(100, 2, np.int16)
    p = PromptPlayer([a, b])
    out = np.concatenate([p.read(160), p.read(160)])
    assert list(out[:300]) == [1] * 200 + [2] * 100 and p.finished and not out[300:].any()
    looped = PromptPlayer([a, b], loop=True)
    out = np.concatenate([looped.read(160) for _ in range(4)])
    assert list(out[:600]) == ([1] * 200 + [2] * 100) * 2 and not looped.finished


def test_music_on_hold_decoded_and_encoded_once_for_all_listeners() -> None:
    moh = MusicOnHold(np.arange(1000, dtype=np.int16))
    l1, l2 = moh.listener(), moh.listener()
    f1 = l1.next_payload("PCMU")
    assert moh.encoded("PCMU") is moh.encoded("PCMU")
    l2.next_payload("PCMU")
    f2 = l2.next_payload("PCMU")
    assert f1 == get_codec("PCMU").encode(moh.pcm[:160])
    assert f2 == get_codec("PCMU").encode(moh.pcm[160:320])
    for _ in range(moh.frames - 1):
        l1.next_payload("PCMU")
    assert l1.index == 0  # looped


def _session() -> EndpointSession:
    s = EndpointSession(ssrc=1)
    s.set_remote(RemoteDescription(PHONE[0], PHONE[1], 0, "PCMU", 101))
    return s


def test_session_dtmf_interrupts_prompt_and_dedupes_inband_echo_of_it() -> None:
    s = _session()
    s.play_prompts([np.zeros(80000, np.int16)], loop=False, interruptible=True)
    sender = DtmfSender()
    sender.queue("7", 100)
    now, seq = 0.0, 0
    for i in range(8):
        ev = sender.tick(160 * i)
        if ev is not None:
            pkt = RtpPacket(101, seq, ev.timestamp, 9, ev.payload, ev.marker).build()
            s.receive_rtp(pkt, PHONE, now)
            seq += 1
        s.tick(now)
        now += 0.02
    events = []
    while (e := s.next_event()) is not None:
        events.append(e)
    assert isinstance(events[0], DigitReceived) and events[0].digit.digit == "7"
    assert events[1] == PlaybackFinished(interrupted=True) and not s.playing
    # the same digit heard in-band at the same moment is not delivered twice
    from media.dtmf import DtmfDigit, DtmfSource

    s._digit(DtmfDigit("7", 90, DtmfSource.INBAND, events[0].digit.started + 0.05))
    assert s.next_event() is None


def test_session_sends_with_ptime_40_and_rfc4733() -> None:
    s = EndpointSession(ssrc=1)
    s.set_remote(RemoteDescription(PHONE[0], PHONE[1], 8, "PCMA", 96, ptime_ms=40))
    s.play_tone(1000, 0.3)
    sent = [p for i in range(6) for p in s.tick(0.02 * i)]
    assert len(sent) == 3 and all(len(parse_rtp(p).payload) == 320 for p in sent)
    ts = [parse_rtp(p).timestamp for p in sent]
    assert ts[1] - ts[0] == 320
    s.send_dtmf("1")
    ev = [parse_rtp(p) for i in range(10) for p in s.tick(0.2 + 0.02 * i)]
    assert ev[0].payload_type == 96 and ev[0].marker and ev[0].payload[:1] == b"\x01"


def test_session_counts_ssrc_change_and_drops_foreign_and_garbage() -> None:
    s = _session()
    for i in range(3):
        s.receive_rtp(RtpPacket(0, i, 160 * i, 5, b"\xff" * 160).build(), PHONE, 0.02 * i)
    s.receive_rtp(b"garbage", PHONE, 0.1)
    s.receive_rtp(RtpPacket(0, 3, 480, 5, b"\xff" * 160).build(), EVIL, 0.1)
    s.receive_rtp(RtpPacket(0, 700, 90000, 6, b"\xff" * 160).build(), PHONE, 0.12)
    st = s.stats()
    assert st.packets_received == 4 and st.ssrc_changes == 1 and st.dropped == 2
