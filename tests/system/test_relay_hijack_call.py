"""Issue 20.2 through a real call: an attacker sprays RTP and RTCP at every port of the
switch's (narrowed) relay range before, during and after a call between two pjsua2 phones.

The attacker sends a loud 3 kHz tone as well-formed streams (one SSRC and consecutive
sequence numbers per port), from the phones' own address 127.0.0.1 and from 127.0.0.2.
Before the fix the relay latched on it (it sent first) and the phones heard 3 kHz while the
attacker received their audio.  Now: each phone hears only the other one's tone, and the
attacker receives nothing.
"""

from __future__ import annotations

import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest

from media.codecs import get_codec
from tests.support.audio import dominant_frequency, read_wav
from tests.support.pjphone import Phone, PjAccount, PjLibrary
from tests.support.server import RunningSwitch, config_with, start_switch

RANGE = 100  # media ports: 50 RTP/RTCP pairs, all sprayed


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("relay-hijack")
    # above the phones' RTP ports (make_phone draws them below 62,000)
    base = 62000 + 2 * secrets.randbelow(1400)
    self = config_with(tmp, {"calls.ring_timeout": 5, "media.port_min": base,
                             "media.port_max": base + RANGE - 1})
    running = start_switch(tmp, config=self)
    running.media_range = (base, base + RANGE - 1)  # type: ignore[attr-defined]
    yield running
    running.stop()


def symmetric_phone(lib: PjLibrary, user: str, switch: RunningSwitch) -> Phone:
    """A UDP phone whose SDP declares 127.0.0.1, the address its RTP comes from (symmetric
    RTP, RFC 4961), as a phone on the switch's own network does.  (The shared test phones
    declare the host's interface address while sending from 127.0.0.1: the relay can only
    learn such a phone as the only sender, which a sprayer prevents -- no audio, no leak.)"""
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{user}@{switch.host}"
    acfg.sipConfig.transportId = lib.transports["UDP"]
    acfg.regConfig.registrarUri = f"sip:{switch.host}:{switch.port}"
    acfg.regConfig.timeoutSec = 300
    acfg.regConfig.retryIntervalSec = 0
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, f"demo-{user}"))
    acfg.mediaConfig.transportConfig.port = 20000 + 2 * secrets.randbelow(20000)
    acfg.mediaConfig.transportConfig.portRange = 2000
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
    acfg.natConfig.sipOutboundUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acc = PjAccount()
    acc.create(acfg)
    return Phone(lib, acc, "UDP", f"sip:{user}@{switch.host}")


class Sprayer(threading.Thread):
    """Sends 3 kHz PCMU to every even port (and an RTCP report to every odd one), 25 pps."""

    def __init__(self, ports: range) -> None:
        super().__init__(daemon=True)
        self.ports = list(ports)
        self.socks = []
        for host in ("127.0.0.1", "127.0.0.2"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            s.setblocking(False)
            self.socks.append(s)
        t = np.arange(160) / 8000
        self.payload = get_codec("PCMU").encode(
            np.round(12000 * np.sin(2 * np.pi * 3000 * t)).astype(np.int16))
        self.stop_at: float | None = None
        self.received = 0
        self.sent = 0

    def run(self) -> None:
        ssrc = {p: secrets.randbits(32) for p in self.ports}
        seq = 0
        while self.stop_at is None or time.monotonic() < self.stop_at:
            for s in self.socks:
                for port in self.ports:
                    hdr = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, ssrc[port])
                    rr = struct.pack("!BBHI", 0x80, 201, 1, ssrc[port])
                    try:
                        s.sendto(hdr + self.payload, ("127.0.0.1", port))
                        s.sendto(rr, ("127.0.0.1", port + 1))
                        self.sent += 2
                    except OSError:
                        pass  # a full socket buffer: the next round goes on
                while True:
                    try:
                        s.recv(2048)
                        self.received += 1
                    except BlockingIOError:
                        break
                    except OSError:
                        continue  # ICMP port unreachable from a port nobody holds
            seq += 1
            time.sleep(0.04)
        for s in self.socks:
            s.close()


def _tone_level(path: Path, freq: float) -> float:
    """Energy share of the band around `freq` in what the phone recorded."""
    data, rate = read_wav(path)
    data = data[int(0.3 * rate):]
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data)))) ** 2
    freqs = np.fft.rfftfreq(len(data), 1.0 / rate)
    band = (freqs > freq - 50) & (freqs < freq + 50)
    return float(spectrum[band].sum() / max(spectrum[1:].sum(), 1e-9))


def test_rtp_sprayed_at_the_relay_range_reaches_nobody(pj_lib: Any, switch: RunningSwitch,
                                                      tmp_path: Path) -> None:
    lo, hi = switch.media_range  # type: ignore[attr-defined]
    sprayer = Sprayer(range(lo + (lo & 1), hi, 2))
    caller = symmetric_phone(pj_lib, "501410", switch)
    callee = symmetric_phone(pj_lib, "501411", switch)
    heard_by_caller, heard_by_callee = tmp_path / "caller.wav", tmp_path / "callee.wav"
    try:
        for p in (caller, callee):
            assert p.wait_registration(lambda e: e[0] == 200, since=0) is not None
        sprayer.start()
        pj_lib.wait_until(lambda: False, 0.5)  # before: the ports are already being sprayed
        callee.account.answer_with = 200
        callee.account.tone_freq = 800
        callee.account.record_path = str(heard_by_callee)
        call = caller.call(f"sip:501411@{switch.host}:{switch.port}", tone_freq=500,
                           record_path=str(heard_by_caller))
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, 8), \
            switch.log_text()[-2000:]
        pj_lib.wait_until(lambda: False, 2.5)  # during
        call.stop_media()
        for c in callee.account.incoming:
            c.stop_media()
        call.hangup(pj.CallOpParam(True))
        pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
        sprayer.stop_at = time.monotonic() + 0.5  # after
        sprayer.join(5)
    finally:
        sprayer.stop_at = 0.0
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        caller.shutdown()
        callee.shutdown()
    assert sprayer.sent > 5000
    assert sprayer.received == 0  # not one packet of the call (RTP or RTCP) went to it
    for path, expected in ((heard_by_caller, 800), (heard_by_callee, 500)):
        freq, level = dominant_frequency(path, skip_seconds=0.3)
        assert abs(freq - expected) < 15 and level > 100, (path.name, freq, level)
        assert _tone_level(path, 3000) < 0.01, (path.name, _tone_level(path, 3000))
