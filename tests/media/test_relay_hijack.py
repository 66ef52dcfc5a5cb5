"""Issue 20.2: a third party cannot take a relayed call's audio (strict source, random ports).

The attack: somebody who finds a call's relay ports sends RTP (and RTCP) to them before,
during and after the phones' media, with one SSRC and consecutive sequence numbers so that
it passes any probation.  Before the fix the relay latched on whoever sent first or after a
2 s pause, and its ports came in sequence.  Now none of the attacker's packets reach a phone
and none of the phones' packets reach the attacker; the drops are counted.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
import struct
from collections.abc import AsyncIterator

import pytest
from media_peer import RtpPeer, dominant_frequency

from media import MediaEngine
from media.latch import Latch, LatchState, unroutable

_ranges = itertools.count(secrets.randbelow(30))

DECLARED = ("198.51.100.7", 4000)  # a reachable SDP address
OTHER_PORT = ("198.51.100.7", 4100)  # same IP, another port (ALG / asymmetric phone)
STRANGER = ("203.0.113.66", 5004)
PRIVATE = ("10.1.2.3", 4000)
NAT = ("192.0.2.44", 61000)


def feed(latch: Latch, addr: tuple[str, int], n: int, t0: float, ssrc: int = 1,
         seq0: int = 100) -> list[bool]:
    """``n`` well-formed packets (one SSRC, consecutive numbers) 20 ms apart."""
    return [latch.check(addr, (seq0 + i) & 0xFFFF, t0 + 0.02 * i, ssrc) for i in range(n)]


# --- the rule, packet by packet (pure) -------------------------------------------------------
def test_nothing_is_accepted_before_the_sdp_address_is_known() -> None:
    latch = Latch()
    assert not any(feed(latch, STRANGER, 50, 0.0))
    assert latch.latched is None and latch.rejected == 50


def test_reachable_declared_address_locks_and_is_never_given_up() -> None:
    latch = Latch(relatch_after=2.0, grace=1.0)
    latch.set_expected(DECLARED)
    assert not any(feed(latch, STRANGER, 20, 0.0))  # a stranger first: never learned
    assert all(feed(latch, DECLARED, 10, 0.5))
    assert latch.state is LatchState.LATCHED and latch.latched == DECLARED
    assert not any(feed(latch, STRANGER, 50, 1.0))  # during
    assert not any(feed(latch, OTHER_PORT, 50, 1.0, ssrc=2))
    # after: the phone is silent for a long time (hold, end of talk): still locked
    assert not any(feed(latch, STRANGER, 50, 100.0))
    assert not any(feed(latch, OTHER_PORT, 50, 200.0, ssrc=2))
    assert latch.target == DECLARED


def test_reachable_declared_address_other_source_only_as_the_only_sender() -> None:
    # a phone with several interfaces (or a NAT that kept the SDP's public address) sends
    # from elsewhere: learned once the declared address stayed silent for the grace time
    latch = Latch(probation=4, grace=1.0)
    latch.set_expected(DECLARED)
    assert not any(feed(latch, STRANGER, 49, 0.0))  # 0.98 s: the declared address's turn
    assert latch.check(STRANGER, 149, 1.0, 1) and latch.latched == STRANGER
    # the declared address is preferred: it takes over as soon as it sends
    assert latch.check(DECLARED, 1, 1.2, 5) and latch.latched == DECLARED


def test_two_rival_senders_get_neither_latched() -> None:
    # the phone (from an undeclared address) and a stranger both send: no audio rather than
    # audio to a stranger
    latch = Latch(probation=4, grace=1.0)
    latch.set_expected(DECLARED)
    for i in range(200):  # 4 s, interleaved, both well-formed
        assert not latch.check(STRANGER, 100 + i, 0.02 * i, 1)
        assert not latch.check(OTHER_PORT, 500 + i, 0.02 * i + 0.01, 2)
    assert latch.latched is None
    latch2 = Latch(probation=4, grace=1.0)
    latch2.set_expected(PRIVATE)  # the same behind a NAT
    for i in range(50):
        assert not latch2.check(NAT, 100 + i, 0.02 * i, 1)
        assert not latch2.check(STRANGER, 500 + i, 0.02 * i + 0.01, 2)
    # the stranger stops; once it has been quiet for the grace time the phone is learned
    results = feed(latch2, NAT, 60, 1.0, seq0=150)
    assert results.index(True) >= 49 and latch2.latched == NAT


def test_many_ports_spraying_are_not_tracked() -> None:
    latch = Latch(probation=2, grace=1.0)
    latch.set_expected(PRIVATE)
    for rnd in range(5):  # a stranger sprays from 100 ports, round after round
        for port in range(100):
            assert not latch.check(("203.0.113.66", 10000 + port), rnd, 0.02 * rnd, port)
    assert latch.latched is None and len(latch._cands) <= 8


def test_same_ip_other_port_only_after_the_declared_address_stayed_silent() -> None:
    latch = Latch(probation=4, grace=1.0)
    latch.set_expected(DECLARED)
    assert not any(feed(latch, OTHER_PORT, 40, 0.0))  # 0.8 s: within the grace
    assert not feed(latch, OTHER_PORT, 9, 0.8, seq0=140)[0]
    assert latch.check(OTHER_PORT, 149, 1.0, 1) and latch.latched == OTHER_PORT
    assert latch.check(DECLARED, 1, 1.2, 5) and latch.latched == DECLARED


def test_nat_phone_with_private_sdp_is_learned_after_probation() -> None:
    latch = Latch(probation=4)
    latch.set_expected(PRIVATE)
    assert feed(latch, NAT, 4, 0.0) == [False, False, False, True]
    assert latch.target == NAT
    assert not any(feed(latch, STRANGER, 20, 0.1, ssrc=9))  # locked while the phone talks


def test_nat_host_from_signalling_restricts_learning_to_that_ip() -> None:
    latch = Latch(probation=4)
    latch.set_expected(PRIVATE, nat_host=NAT[0])
    assert not any(feed(latch, STRANGER, 40, 0.0, ssrc=9))  # first and consistent: refused
    assert feed(latch, NAT, 4, 1.0) == [False, False, False, True]
    assert latch.target == NAT


def test_relearning_after_silence_needs_probation_and_a_plausible_source() -> None:
    latch = Latch(probation=4, relatch_after=2.0)
    latch.set_expected(PRIVATE, nat_host=NAT[0])
    feed(latch, NAT, 4, 0.0)
    rebound = (NAT[0], 61002)  # the NAT gave the phone a new port
    assert not any(feed(latch, rebound, 4, 1.0, ssrc=3))  # the old mapping is not silent yet
    assert not any(feed(latch, STRANGER, 10, 5.0, ssrc=9))  # silent, but not plausible
    assert feed(latch, rebound, 4, 6.0, ssrc=3, seq0=7) == [False, False, False, True]


def test_reinvite_relearns_and_a_refresh_keeps_the_lock() -> None:
    latch = Latch()
    latch.set_expected(DECLARED)
    assert latch.check(DECLARED, 1, 0.0, 1)
    latch.set_expected(DECLARED)  # session refresh: same address
    assert latch.latched == DECLARED
    moved = ("198.51.100.8", 4002)
    latch.set_expected(moved)  # re-INVITE to a new address
    assert latch.latched is None and latch.target == moved
    assert not latch.check(DECLARED, 2, 0.1, 1)
    assert latch.check(moved, 1, 0.2, 1) and latch.latched == moved


def test_address_classes() -> None:
    for host in ("10.0.0.1", "172.20.1.1", "192.168.0.5", "100.64.3.3", "169.254.1.1",
                 "0.0.0.0", "fd00::1", "fe80::1", "phone.local"):
        assert unroutable(host), host
    for host in ("127.0.0.1", "192.0.2.1", "8.8.8.8", "2001:db8::1"):
        assert not unroutable(host), host


# --- over real sockets -------------------------------------------------------------------------
@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = 50000 + 400 * (next(_ranges) % 30)
    eng = MediaEngine("127.0.0.1", base, base + 399, rtcp_interval=0.2)
    await eng.start()
    yield eng
    await eng.stop()


async def test_relay_ports_are_not_handed_out_in_sequence(engine: MediaEngine) -> None:
    relays = [await engine.open_relay() for _ in range(20)]
    ports = [leg.local_port for r in relays for leg in (r.leg_a, r.leg_b)]
    assert len(set(ports)) == 40 and all(p % 2 == 0 for p in ports)
    steps = [b - a for a, b in itertools.pairwise(ports)]
    # in sequence every step would be +2; 39 random draws among 200 pairs almost never are
    assert sum(1 for s in steps if s == 2) < 10
    for r in relays:
        await r.close()


class _Attacker(asyncio.DatagramProtocol):
    """Sprays well-formed RTP and RTCP at every relay port; records what comes back."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr))

    async def spray(self, ports: list[int], seconds: float) -> None:
        assert self.transport is not None
        payload = bytes([0x55]) * 160  # loud, and recognisable by its SSRC anyway
        for _ in range(int(seconds / 0.02)):
            hdr = struct.pack("!BBHII", 0x80, 0, self.seq, self.seq * 160, self.ssrc)
            self.seq = (self.seq + 1) & 0xFFFF
            for port in ports:
                self.transport.sendto(hdr + payload, ("127.0.0.1", port))
                # an RTCP receiver report (RFC 3550 6.4.2) to the odd port
                self.transport.sendto(struct.pack("!BBHI", 0x80, 201, 1, self.ssrc),
                                      ("127.0.0.1", port + 1))
            await asyncio.sleep(0.02)


async def _attacker(host: str) -> _Attacker:
    loop = asyncio.get_running_loop()
    proto = _Attacker()
    await loop.create_datagram_endpoint(lambda: proto, local_addr=(host, 0))
    return proto


def _ssrcs(packets: list[tuple[bytes, tuple[str, int], float]]) -> set[int]:
    return {int.from_bytes(d[8:12], "big") for d, _a, _t in packets if len(d) >= 12}


async def test_third_party_before_during_and_after_gets_nothing(engine: MediaEngine) -> None:
    a, b = await RtpPeer.create(), await RtpPeer.create()
    # one attacker on the phones' own IP (another port), one on another address
    attackers = [await _attacker("127.0.0.1"), await _attacker("127.0.0.2")]
    relay = await engine.open_relay()
    for leg in (relay.leg_a, relay.leg_b):
        leg.latch.relatch_after = 0.5  # a short "long silence", to try the after phase
    ports = [relay.leg_a.local_port, relay.leg_b.local_port]
    a.remote = (relay.leg_a.local_host, relay.leg_a.local_port)
    b.remote = (relay.leg_b.local_host, relay.leg_b.local_port)

    async def attack() -> None:
        await asyncio.gather(*(x.spray(ports, 3.0) for x in attackers))

    async def call() -> None:
        await asyncio.sleep(0.3)  # before: the call is not answered yet, no SDP on the legs
        relay.leg_a.set_remote(a.addr[0], a.addr[1], 0, "PCMU")
        relay.leg_b.set_remote(b.addr[0], b.addr[1], 0, "PCMU")
        await asyncio.sleep(0.3)  # answered, the attackers still first (within the grace)
        await asyncio.gather(a.send_tone(500, 1.0), b.send_tone(800, 1.0))  # during
        # after: the phones fall silent while the attackers go on for 1.4 s (> relatch_after)

    await asyncio.gather(attack(), call())
    await asyncio.sleep(0.1)

    # the phones heard each other, and only each other
    assert _ssrcs(a.received) == {b.ssrc} and _ssrcs(b.received) == {a.ssrc}
    assert abs(dominant_frequency(a.audio()) - 800) < 16
    assert abs(dominant_frequency(b.audio()) - 500) < 10
    assert len(a.received) >= 45 and len(b.received) >= 45
    # the attackers got nothing, RTP or RTCP, and nothing latched on them
    for x in attackers:
        assert x.received == []
    assert relay.leg_a.latched == a.addr and relay.leg_b.latched == b.addr
    assert relay.leg_a._rtcp_source is None and relay.leg_b._rtcp_source is None
    # every attacker packet was dropped and counted, per leg and for the whole engine
    sa, sb = relay.stats()
    for leg, s in ((relay.leg_a, sa), (relay.leg_b, sb)):
        assert leg.foreign_dropped >= 2 * 2 * 140  # 2 attackers, RTP + RTCP, ~150 rounds
        assert s.dropped >= leg.foreign_dropped
    counters = engine.counters()
    assert counters["rtp_foreign_dropped"] == (relay.leg_a.foreign_dropped
                                               + relay.leg_b.foreign_dropped)
    await relay.close()
    a.close()
    b.close()
    for x in attackers:
        assert x.transport is not None
        x.transport.close()
