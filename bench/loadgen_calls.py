"""A SIP call load generator playing both ends of calls through the switch (own process).

Two UDP sockets on loopback:

- the UAS socket registers every callee (REGISTER, 401, REGISTER with Authorization) and
  answers what the switch sends it: INVITE -> 180 then 200 with an SDP answer (PCMU), ACK,
  BYE -> 200. Its 200 to an INVITE is retransmitted until the ACK (RFC 3261 13.3.1.4);
- the UAC socket places calls: INVITE with an SDP offer (PCMU) -> 407 -> ACK, INVITE with
  Proxy-Authorization -> 100/180/200 -> ACK to the 200's Contact -> BYE after the hold time
  -> 200. A caller account keeps the nonce of its last 407 and sends the next INVITE with
  credentials at once, nc + 1 (RFC 7616 section 3.4.5), as many phones do; a stale or
  refused nonce gets a fresh 407 round. INVITE and BYE are retransmitted on loss (Timer A/E).

No RTP is sent: the figures are signalling and media-relay set-up/tear-down cost. Every run
is bounded by a call count and a time limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.loadgen import branch_of
from bench.loadgen_register import run_register, widen_buffers

T1, T2 = 0.5, 4.0
TIMEOUT_S = 16.0
_CHALLENGE = re.compile(rb'Proxy-Authenticate: *Digest ([^\r\n]*)', re.IGNORECASE)
_NONCE = re.compile(rb'nonce="([^"]*)"')
_TO = re.compile(rb'\r\nTo: *([^\r\n]*)', re.IGNORECASE)
_CONTACT = re.compile(rb'\r\nContact: *<([^>]*)>', re.IGNORECASE)
_CSEQ = re.compile(rb'\r\nCSeq: *(\d+) +([A-Z]+)', re.IGNORECASE)
_CALL_ID = re.compile(rb'\r\nCall-ID: *([^\r\n]*)', re.IGNORECASE)
_KEEP = (b"via", b"from", b"to", b"call-id", b"cseq")


@dataclass
class CallsResult:
    started: int = 0
    answered: int = 0  # 200 to the INVITE, ACKed
    completed: int = 0  # answered, then BYE answered 200
    failed: dict[str, int] = field(default_factory=dict)  # final status or "timeout"
    challenges: int = 0  # 407 rounds
    stale: int = 0  # 407 with stale=true
    retransmissions: int = 0
    setup_latencies: list[float] = field(default_factory=list)  # first INVITE -> 200
    max_held: int = 0  # established calls at once (answered, BYE not yet sent)
    uas_invites: int = 0
    uas_acks: int = 0
    uas_byes: int = 0
    registered: int = 0
    elapsed: float = 0.0
    cpu_s: float = 0.0  # switch CPU from the first call to the last (registration excluded)
    hold_s: float = 0.0  # held phase: wall time with every call established, no BYE yet
    hold_cpu_s: float = 0.0  # switch CPU over that phase
    hold_rss_growth: int = 0  # switch RSS when every call is up, less its RSS at the start


@dataclass
class _Call:
    caller: int
    callee: str
    call_id: str
    tag: str
    cseq: int = 1
    started: float = 0.0
    answered: bool = False
    ack: bytes = b""
    bye: bool = False


@dataclass
class _Txn:
    call: _Call
    data: bytes
    sent: float
    retransmit_at: float
    interval: float = T1
    method: str = "INVITE"
    got_response: bool = False


@dataclass
class _Caller:
    user: str
    ha1: str
    nonce: str = ""
    nc: int = 0


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def offer_sdp(port: int, session: int) -> bytes:
    return (f"v=0\r\no=bench {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            f"t=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
            "a=sendrecv\r\n").encode()


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_data(data, addr)


class _Uas:
    """Answers every INVITE the switch sends: 180 then 200 (SDP), 200 to BYE."""

    def __init__(self, result: CallsResult, port: int) -> None:
        self.result = result
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        # Call-ID -> (200 bytes, peer, next retransmission, interval) until the ACK comes
        self.unacked: dict[bytes, tuple[bytes, tuple[str, int], float, float]] = {}
        self.answered: dict[bytes, bytes] = {}  # Call-ID -> the 200 (INVITE retransmissions)
        self.register_cb: Callable[[bytes], None] | None = None
        self.sdp_port = 40000

    def on_data(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 "):
            if self.register_cb is not None:
                self.register_cb(data)
            return
        method = data[:data.find(b" ")]
        head, _, _ = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        keep = [ln for ln in lines[1:] if ln.split(b":", 1)[0].strip().lower() in _KEEP]
        m = _CALL_ID.search(head)
        call_id = m.group(1) if m else b""
        t = self.transport
        if t is None:
            return
        if method == b"INVITE":
            old = self.answered.get(call_id)
            if old is not None:
                t.sendto(old, addr)
                return
            self.result.uas_invites += 1
            tag = secrets.token_hex(4).encode()
            hdrs = [ln + b";tag=" + tag if ln.lower().startswith(b"to:") else ln for ln in keep]
            contact = b"Contact: <sip:uas@127.0.0.1:" + str(self.port).encode() + b">"
            ringing = b"\r\n".join([b"SIP/2.0 180 Ringing", *hdrs, contact,
                                    b"Content-Length: 0", b"", b""])
            self.sdp_port += 2
            if self.sdp_port > 60000:
                self.sdp_port = 40000
            body = offer_sdp(self.sdp_port, self.sdp_port)
            ok = b"\r\n".join([b"SIP/2.0 200 OK", *hdrs, contact,
                               b"Content-Type: application/sdp",
                               b"Content-Length: " + str(len(body)).encode(), b"", body])
            t.sendto(ringing, addr)
            t.sendto(ok, addr)
            self.answered[call_id] = ok
            self.unacked[call_id] = (ok, addr, time.perf_counter() + T1, T1)
        elif method == b"ACK":
            if self.unacked.pop(call_id, None) is not None:
                self.result.uas_acks += 1
        elif method in (b"BYE", b"CANCEL"):
            if method == b"BYE":
                self.result.uas_byes += 1
            self.answered.pop(call_id, None)
            self.unacked.pop(call_id, None)
            t.sendto(b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""]),
                     addr)
        else:
            t.sendto(b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""]),
                     addr)

    def tick(self, now: float) -> None:
        t = self.transport
        if t is None:
            return
        for cid, (ok, addr, at, interval) in list(self.unacked.items()):
            if now >= at:
                if interval >= 8 * T2:
                    del self.unacked[cid]
                    continue
                self.result.retransmissions += 1
                t.sendto(ok, addr)
                self.unacked[cid] = (ok, addr, now + min(interval * 2, T2), interval * 2)


async def run_calls(host: str, port: int, *, callers: list[str], callees: list[str],
                    realm: str, domain: str, total: int, concurrency: int, hold_s: float,
                    rate: float, limit_s: float, uas_port: int,
                    cpu_probe: Callable[[], float] = lambda: 0.0,
                    rss_probe: Callable[[], int] = lambda: 0,
                    password: Callable[[str], str] = lambda u: f"pw-{u}") -> CallsResult:
    """Place up to `total` calls, `concurrency` at most in progress.

    hold_s == 0 (calls per second): every call is hung up as soon as it is ACKed and a new
    one starts, closed loop. hold_s > 0 (concurrent calls): calls start at `rate` per
    second and are held; once every call is established (or failed) they stay up `hold_s`
    seconds, then are hung up at `rate` per second. `cpu_probe` reads the switch's CPU
    seconds (the generator samples it at the phase boundaries); `rss_probe` its resident
    memory in bytes, read at the start and once every call is up."""
    loop = asyncio.get_running_loop()
    result = CallsResult()
    accounts = [_Caller(u, _h(f"{u}:{realm}:{password(u)}")) for u in callers]
    uas = _Uas(result, uas_port)
    uas_t, _ = await loop.create_datagram_endpoint(
        lambda: _Proto(uas.on_data), local_addr=("127.0.0.1", uas_port))
    uas.transport = uas_t
    widen_buffers(uas_t)
    # The callees register from the UAS socket: the switch sends their calls there.
    reg = await run_register(host, port, callees, realm, domain, 100, 30.0, password=password,
                             transport=uas_t, hook=lambda cb: setattr(uas, "register_cb", cb),
                             contact_port=uas_port)
    uas.register_cb = None
    result.registered = reg.registered
    if reg.registered < len(callees):
        uas_t.close()
        return result

    txns: dict[bytes, _Txn] = {}  # branch -> client transaction (INVITE or BYE)
    done = asyncio.Event()
    counter = 0
    in_progress = 0
    held = 0
    holding: list[tuple[_Call, bytes, bytes]] = []
    marks: dict[str, tuple[float, float]] = {}
    prefix = "z9hG4bK" + secrets.token_hex(4)
    uac_t: asyncio.DatagramTransport | None = None
    uac_port = 0
    dest = (host, port)

    def new_branch() -> str:
        nonlocal counter
        counter += 1
        return f"{prefix}{counter}"

    def fail(reason: str) -> None:
        result.failed[reason] = result.failed.get(reason, 0) + 1
        check_all_up()

    def check_all_up() -> None:
        if hold_s > 0 and "up" not in marks and result.answered + sum(
                result.failed.values()) >= total:
            marks["up"] = (time.perf_counter(), cpu_probe())
            result.hold_rss_growth = rss_probe() - rss0
            loop.call_later(hold_s, lambda: asyncio.ensure_future(release()))

    async def release() -> None:
        marks["release"] = (time.perf_counter(), cpu_probe())
        for i, (call, to, ruri) in enumerate(holding):
            send_bye(call, to, ruri)
            if rate > 0 and i % max(1, int(rate / 100)) == 0:
                await asyncio.sleep(0.01)

    def finished() -> None:
        nonlocal in_progress
        in_progress -= 1
        if result.started >= total and in_progress == 0:
            done.set()
        elif rate <= 0:
            start_call()

    def send_txn(call: _Call, method: str, data: bytes, branch: str) -> None:
        assert uac_t is not None
        now = time.perf_counter()
        txns[branch.encode()] = _Txn(call, data, now, now + T1, T1, method)
        uac_t.sendto(data, dest)

    def send_invite(call: _Call) -> None:
        acc = accounts[call.caller]
        branch = new_branch()
        ruri = f"sip:{call.callee}@{domain}"
        body = offer_sdp(30000 + (call.caller % 10000) * 2, call.cseq)
        lines = [
            f"INVITE {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{uac_port};rport;branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{acc.user}@{domain}>;tag={call.tag}",
            f"To: <{ruri}>",
            f"Call-ID: {call.call_id}",
            f"CSeq: {call.cseq} INVITE",
            f"Contact: <sip:{acc.user}@127.0.0.1:{uac_port}>",
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
            "User-Agent: wte-bench/1",
        ]
        if acc.nonce:
            acc.nc += 1
            nc = f"{acc.nc:08x}"
            cnonce = secrets.token_hex(4)
            ha2 = _h(f"INVITE:{ruri}")
            resp = _h(f"{acc.ha1}:{acc.nonce}:{nc}:{cnonce}:auth:{ha2}")
            lines.append(f'Proxy-Authorization: Digest username="{acc.user}", realm="{realm}", '
                         f'nonce="{acc.nonce}", uri="{ruri}", algorithm=SHA-256, '
                         f'response="{resp}", qop=auth, nc={nc}, cnonce="{cnonce}"')
        lines += ["Content-Type: application/sdp", f"Content-Length: {len(body)}", "", ""]
        send_txn(call, "INVITE", "\r\n".join(lines).encode() + body, branch)

    def in_dialog(call: _Call, method: str, cseq: int, to: bytes, ruri: bytes,
                  branch: str) -> bytes:
        acc = accounts[call.caller]
        return (f"{method} ".encode() + ruri + (
            f" SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{uac_port};rport;branch={branch}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{acc.user}@{domain}>;tag={call.tag}\r\n"
            f"To: ").encode() + to + (
            f"\r\nCall-ID: {call.call_id}\r\nCSeq: {cseq} {method}\r\n"
            "Content-Length: 0\r\n\r\n").encode())

    def start_call() -> None:
        nonlocal in_progress
        if result.started >= total or in_progress >= concurrency:
            return
        i = result.started
        result.started += 1
        in_progress += 1
        call = _Call(i % len(callers), callees[i % len(callees)],
                     f"bench-call-{prefix}-{i}", secrets.token_hex(4))
        call.started = time.perf_counter()
        send_invite(call)

    def send_bye(call: _Call, to: bytes, ruri: bytes) -> None:
        nonlocal held
        held -= 1
        call.bye = True
        branch = new_branch()
        send_txn(call, "BYE", in_dialog(call, "BYE", call.cseq + 1, to, ruri, branch), branch)

    def on_uac(data: bytes, addr: tuple[str, int]) -> None:
        nonlocal held
        if not data.startswith(b"SIP/2.0 "):
            # a request from the switch toward a caller (none expected): answer 200
            return
        br = branch_of(data)
        txn = txns.get(br) if br is not None else None
        if txn is None:
            return
        code = int(data[8:11])
        txn.got_response = True
        call = txn.call
        if txn.method == "BYE":
            if code >= 200:
                del txns[br]  # type: ignore[arg-type]
                if code == 200:
                    result.completed += 1
                else:
                    fail(f"BYE {code}")
                finished()
            return
        if code < 200:
            return
        head = data.partition(b"\r\n\r\n")[0]
        to_m = _TO.search(head)
        to = to_m.group(1) if to_m else b""
        if code >= 300:
            del txns[br]  # type: ignore[arg-type]
            # ACK for a non-2xx: same branch and Request-URI as the INVITE (RFC 3261 17.1.1.3)
            ruri = f"sip:{call.callee}@{domain}".encode()
            assert uac_t is not None
            uac_t.sendto(in_dialog(call, "ACK", call.cseq, to, ruri, br.decode()), dest)  # type: ignore[union-attr]
            if code == 407 and call.cseq < 4:
                result.challenges += 1
                if b"stale=true" in head:
                    result.stale += 1
                acc = accounts[call.caller]
                for m in _CHALLENGE.finditer(head):
                    if b"SHA-256" in m.group(1):
                        n = _NONCE.search(m.group(1))
                        acc.nonce, acc.nc = (n.group(1).decode() if n else ""), 0
                        break
                call.cseq += 1
                send_invite(call)
                return
            fail(str(code))
            finished()
            return
        # 2xx: ACK it (again, for a retransmitted 2xx) to the Contact of the 200
        if not call.answered:
            call.answered = True
            result.answered += 1
            result.setup_latencies.append(time.perf_counter() - call.started)
            c = _CONTACT.search(head)
            ruri = c.group(1) if c else f"sip:{host}:{port}".encode()
            call.ack = in_dialog(call, "ACK", call.cseq, to, ruri, new_branch())
            held += 1
            result.max_held = max(result.max_held, held)
            if hold_s <= 0:
                assert uac_t is not None
                uac_t.sendto(call.ack, dest)
                send_bye(call, to, ruri)
                return
            holding.append((call, to, ruri))
            check_all_up()
        assert uac_t is not None
        uac_t.sendto(call.ack, dest)

    uac_t, _ = await loop.create_datagram_endpoint(
        lambda: _Proto(on_uac), local_addr=("127.0.0.1", 0))
    widen_buffers(uac_t)
    uac_port = uac_t.get_extra_info("sockname")[1]
    start = time.perf_counter()
    cpu0 = cpu_probe()
    rss0 = rss_probe()

    async def pacer() -> None:
        if rate <= 0:
            for _ in range(concurrency):
                start_call()
            return
        t0 = time.perf_counter()
        while result.started < total:
            due = int((time.perf_counter() - t0) * rate) + 1
            while result.started < min(due, total):
                before = result.started
                start_call()
                if result.started == before:  # `concurrency` calls in progress: wait
                    break
            await asyncio.sleep(0.01)

    async def timers() -> None:
        while not done.is_set():
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            uas.tick(now)
            assert uac_t is not None
            for b, t in list(txns.items()):
                if t.method == "INVITE" and t.call.answered and now - t.sent > TIMEOUT_S:
                    del txns[b]  # kept only to re-ACK a retransmitted 2xx
                elif now - t.sent > TIMEOUT_S:
                    del txns[b]
                    fail(f"{t.method} timeout")
                    if t.method == "BYE" or not t.call.answered:
                        finished()
                elif not t.got_response and now >= t.retransmit_at:
                    t.interval = min(t.interval * 2, T2)
                    t.retransmit_at = now + t.interval
                    result.retransmissions += 1
                    uac_t.sendto(t.data, dest)

    tasks = [asyncio.ensure_future(pacer()), asyncio.ensure_future(timers())]
    try:
        await asyncio.wait_for(done.wait(), limit_s)
    except TimeoutError:
        pass
    result.elapsed = time.perf_counter() - start
    result.cpu_s = cpu_probe() - cpu0
    if "up" in marks and "release" in marks:
        result.hold_s = marks["release"][0] - marks["up"][0]
        result.hold_cpu_s = marks["release"][1] - marks["up"][1]
    for task in tasks:
        task.cancel()
    await asyncio.sleep(0.3)  # let the last BYEs reach the UAS
    uac_t.close()
    uas_t.close()
    return result
