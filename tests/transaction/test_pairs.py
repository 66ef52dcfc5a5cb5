"""Client and server transaction layers talking over the hostile in-memory link.

Whatever the link does (loss, duplication, reordering), each request reaches the server TU
exactly once, each client transaction ends with exactly one final response or a timeout,
and every transaction terminates (house habit 9). Loops are bounded and seeded.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from switch.sip import Request, Response, make_response, new_branch, parse_message
from switch.transaction import (
    ClientKey,
    Peer,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    StrayResponse,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
)
from switch.transport.memory import MemoryLink

from .helpers import request

CLIENT = ("192.0.2.10", 5060)
SERVER = ("198.51.100.1", 5060)
T1, T2 = 0.5, 4.0


@dataclass
class Pending2xx:
    """The server TU retransmits its 2xx until the ACK comes (RFC 3261 13.3.1.4)."""

    key: ServerKey
    response: Response
    next_at: float
    interval: float = T1
    give_up: float = 0.0


@dataclass
class Pair:
    link: MemoryLink
    transport: str
    client: TransactionLayer = field(default_factory=TransactionLayer)
    server: TransactionLayer = field(default_factory=TransactionLayer)
    now: float = 0.0
    finals: dict[ClientKey, list[int]] = field(default_factory=lambda: defaultdict(list))
    timeouts: list[object] = field(default_factory=list)
    server_saw: Counter[tuple[str, str]] = field(default_factory=Counter)
    acks_2xx: Counter[str] = field(default_factory=Counter)
    pending: dict[str, Pending2xx] = field(default_factory=dict)
    invites: dict[ClientKey, Request] = field(default_factory=dict)

    def peer(self, addr: tuple[str, int]) -> Peer:
        return Peer(self.transport, addr[0], addr[1], conn_id=1 if self.transport != "UDP" else None)

    def send(self, method: str, i: int) -> ClientKey:
        req = request(method, branch=new_branch(), call_id=f"call-{i}", transport=self.transport)
        key = self.client.send_request(req, self.peer(SERVER), self.now)
        if method == "INVITE":
            self.invites[key] = req
        return key

    def pump(self) -> None:
        while (ev := self.client.next_event()) is not None:
            if isinstance(ev, Transmit):
                self.link.send(ev.data, CLIENT, (ev.dest.host, ev.dest.port), self.now)
            elif isinstance(ev, ResponseReceived) and ev.response.status >= 200:
                self.finals[ev.key].append(ev.response.status)
                if ev.key.method == "INVITE" and ev.response.status < 300:
                    self.ack_2xx(ev.key, ev.response)
            elif isinstance(ev, TransactionTimeout):
                self.timeouts.append(ev.key)
            elif isinstance(ev, StrayResponse) and ev.response.status < 300 and \
                    ev.response.cseq.method == "INVITE":
                pass  # 2xx after Timer M: the dialog layer would ACK it
        while (ev := self.server.next_event()) is not None:
            if isinstance(ev, Transmit):
                self.link.send(ev.data, SERVER, (ev.dest.host, ev.dest.port), self.now)
            elif isinstance(ev, RequestReceived):
                self.server_tu(ev)

    def ack_2xx(self, key: ClientKey, ok: Response) -> None:
        """The client TU's ACK for a 2xx, a transaction of its own (13.2.2.4, 17.1.1.3)."""
        invite = self.invites[key]
        ack = request("ACK", branch=new_branch(), call_id=invite.call_id, cseq_method="ACK",
                      to_tag=ok.to.tag, transport=self.transport)
        self.client.send_stateless(ack, self.peer(SERVER))

    def server_tu(self, ev: RequestReceived) -> None:
        req = ev.request
        if ev.key is None:  # ACK for a 2xx
            self.acks_2xx[req.call_id] += 1
            self.pending.pop(req.call_id, None)
            return
        self.server_saw[(ev.key.branch, req.method)] += 1
        n = int(req.call_id.split("-")[1])
        if req.method == "INVITE":
            self.server.respond(ev.key, make_response(req, 180, to_tag=f"s{n}"), self.now)
            if n % 2:
                self.server.respond(ev.key, make_response(req, 486, to_tag=f"s{n}"), self.now)
            else:
                ok = make_response(req, 200, to_tag=f"s{n}")
                self.server.respond(ev.key, ok, self.now)
                self.pending[req.call_id] = Pending2xx(
                    ev.key, ok, self.now + T1, give_up=self.now + 64 * T1)
        else:
            self.server.respond(ev.key, make_response(req, 200, to_tag=f"s{n}"), self.now)

    def tu_timers(self) -> None:
        for call_id, p in list(self.pending.items()):
            if p.next_at <= self.now:
                if self.now >= p.give_up or self.server.state(p.key) is None:
                    del self.pending[call_id]
                    continue
                self.server.respond(p.key, p.response, self.now)
                p.interval = min(2 * p.interval, T2)
                p.next_at = self.now + p.interval

    def next_time(self) -> float | None:
        times = [t for t in (self.client.get_timer(), self.server.get_timer(),
                             self.link.get_timer()) if t is not None]
        times.extend(p.next_at for p in self.pending.values())
        return min(times) if times else None

    def run(self, max_steps: int = 200_000) -> None:
        for _ in range(max_steps):
            self.pump()
            t = self.next_time()
            if t is None:
                return
            self.now = max(self.now, t)
            for d in self.link.deliver(self.now):
                msg = parse_message(d.data)
                layer = self.server if d.dst == SERVER else self.client
                layer.receive(msg, self.peer(d.src), self.now)
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)
            self.tu_timers()
        raise AssertionError("did not converge")


def start(seed: int, *, reliable: bool = False, **link: float) -> Pair:
    rng = random.Random(seed)
    ml = MemoryLink(rng, reliable=reliable, **link)
    return Pair(ml, "TCP" if reliable else "UDP")


def check(pair: Pair, keys: list[ClientKey]) -> None:
    assert len(pair.client) == 0 and len(pair.server) == 0 and len(pair.link) == 0
    for key in keys:
        got = pair.finals.get(key, [])
        if key in pair.timeouts:
            assert got == [] or key.method == "INVITE"
            continue
        assert got, key
        if key.method != "INVITE" or got[0] >= 300:
            assert len(got) == 1, (key, got)  # retransmissions absorbed
    # each request reached the server TU at most once, however often it was sent
    assert all(n == 1 for n in pair.server_saw.values())


@pytest.mark.parametrize("seed", range(6))
def test_non_invite_over_lossy_duplicating_reordering_link(seed: int) -> None:
    pair = start(seed, loss=0.25, duplicate=0.2, delay=0.02, jitter=0.3)
    keys = []
    for i in range(60):
        keys.append(pair.send("OPTIONS", i))
        pair.now += 0.01
    pair.run()
    check(pair, keys)
    assert len(pair.timeouts) <= 1
    assert sum(len(v) for v in pair.finals.values()) + len(pair.timeouts) == 60
    assert pair.link.stats["lost"] > 0 and pair.link.stats["duplicated"] > 0


@pytest.mark.parametrize("seed", range(6))
def test_invite_over_lossy_duplicating_reordering_link(seed: int) -> None:
    pair = start(seed, loss=0.25, duplicate=0.2, delay=0.02, jitter=0.3)
    keys = []
    for i in range(40):
        keys.append(pair.send("INVITE", i))
        pair.now += 0.01
    pair.run()
    check(pair, keys)
    answered = [k for k in keys if k in pair.finals]
    assert len(answered) >= 38
    for key in answered:
        n = int(pair.invites[key].call_id.split("-")[1])
        assert pair.finals[key][0] == (486 if n % 2 else 200)


def test_reliable_pair_sends_each_message_once() -> None:
    pair = start(0, reliable=True, delay=0.02, jitter=0.05)
    keys = [pair.send("OPTIONS", 0), pair.send("INVITE", 1), pair.send("INVITE", 2)]
    pair.run()
    check(pair, keys)
    assert not pair.timeouts
    assert [pair.finals[k] for k in keys] == [[200], [486], [200]]
    # OPTIONS+200, INVITE+180+486+ACK, INVITE+180+200+ACK(2xx): no retransmission, and no
    # 100 Trying, the TU answering in the same turn (17.2.1)
    assert pair.link.stats["sent"] == 2 + 4 + 4
    assert pair.acks_2xx["call-2"] == 1
