"""A closed-loop REGISTER load generator with digest authentication (runs in its own process).

Per account: REGISTER without credentials -> 401 -> REGISTER with Authorization (same
Call-ID, CSeq + 1) -> 200. `window` accounts are in progress at once; every run is bounded
by an account count and a time limit. HA1s are computed before the clock starts and the
client hashes with SHA-256 (the switch offers it first, RFC 8760), so the generator's own
work per registration is two small messages built, two responses scanned and one hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.loadgen import branch_of

_CHALLENGE = re.compile(rb'WWW-Authenticate: *Digest ([^\r\n]*)', re.IGNORECASE)
_NONCE = re.compile(rb'nonce="([^"]*)"')
_ALG = re.compile(rb'algorithm=([A-Za-z0-9-]+)')
T1, T2 = 0.5, 4.0
TIMEOUT_S = 8.0  # shorter than Timer F (32 s): the run stays bounded


@dataclass
class RegisterResult:
    accounts: int = 0  # accounts started
    registered: int = 0  # 200 to the authenticated REGISTER
    challenged: int = 0  # 401 to the first REGISTER
    timeouts: int = 0
    retransmissions: int = 0  # requests sent again after T1 without an answer
    errors: int = 0  # any other final answer
    statuses: dict[int, int] = field(default_factory=dict)
    auth_latencies: list[float] = field(default_factory=list)  # authenticated REGISTER -> 200
    full_latencies: list[float] = field(default_factory=list)  # first REGISTER -> 200
    elapsed: float = 0.0


@dataclass
class _Reg:
    user: str
    ha1: str
    call_id: str
    started: float = 0.0
    sent: float = 0.0
    cseq: int = 1
    data: bytes = b""
    retransmit_at: float = 0.0
    interval: float = 0.5


def widen_buffers(transport: asyncio.BaseTransport, size: int = 4 << 20) -> None:
    """A large receive buffer, so the generator itself does not drop bursts of answers."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped host-wide because a socket's receive buffer was full."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")]) if len(rows) >= 2 else 0


def _h(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.on_data(data)


async def run_register(host: str, port: int, users: list[str], realm: str, domain: str,
                       window: int, limit_s: float, expires: int = 3600,
                       password: Callable[[str], str] = lambda u: f"pw-{u}",
                       transport: asyncio.DatagramTransport | None = None,
                       hook: Callable[[Callable[[bytes], None]], None] | None = None,
                       contact_port: int | None = None, rate: float = 0.0) -> RegisterResult:
    """Register every user in `users` once (digest SHA-256, qop=auth).

    With `transport` (and `hook`, which receives the function to feed the answers to), the
    REGISTERs leave from a socket owned by the caller, e.g. the one that answers calls.
    With `rate` > 0 a new account starts every 1/rate seconds (open loop) instead of
    `window` accounts kept in progress."""
    loop = asyncio.get_running_loop()
    result = RegisterResult()
    # HA1 per account, before the clock starts (a phone has it configured).
    ha1s = [_h(f"{u}:{realm}:{password(u)}") for u in users]
    uri = f"sip:{domain}"
    ha2 = _h(f"REGISTER:{uri}")
    pending: dict[bytes, _Reg] = {}
    done = asyncio.Event()
    next_index = 0
    counter = 0
    prefix = "z9hG4bK" + secrets.token_hex(4)
    tag = secrets.token_hex(4)
    dest = (host, port)
    own = transport is None
    local_port = 0

    def send(reg: _Reg, auth: str | None) -> None:
        nonlocal counter
        assert transport is not None
        counter += 1
        branch = f"{prefix}{counter}"
        lines = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};rport;branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{reg.user}@{domain}>;tag={tag}{reg.user}",
            f"To: <sip:{reg.user}@{domain}>",
            f"Call-ID: {reg.call_id}",
            f"CSeq: {reg.cseq} REGISTER",
            f"Contact: <sip:{reg.user}@127.0.0.1:{contact_port or local_port}>",
            f"Expires: {expires}",
            "User-Agent: wte-bench/1",
        ]
        if auth is not None:
            lines.append(f"Authorization: {auth}")
        lines.append("Content-Length: 0\r\n\r\n")
        reg.sent = time.perf_counter()
        reg.data = "\r\n".join(lines).encode()
        reg.interval = T1
        reg.retransmit_at = reg.sent + T1
        pending[branch.encode()] = reg
        transport.sendto(reg.data, dest)

    def start_next() -> None:
        nonlocal next_index
        if next_index >= len(users):
            return
        i = next_index
        next_index += 1
        reg = _Reg(users[i], ha1s[i], f"bench-reg-{secrets.token_hex(6)}-{i}")
        reg.started = time.perf_counter()
        result.accounts += 1
        send(reg, None)

    def finish_one() -> None:
        if result.registered + result.errors + result.timeouts >= len(users):
            done.set()
        elif rate <= 0:
            start_next()

    def on_data(data: bytes) -> None:
        br = branch_of(data)
        if br is None or not data.startswith(b"SIP/2.0 "):
            return
        code = int(data[8:11])
        if code < 200:
            return
        reg = pending.pop(br, None)
        if reg is None:
            return
        now = time.perf_counter()
        result.statuses[code] = result.statuses.get(code, 0) + 1
        if code == 401 and reg.cseq == 1:
            result.challenged += 1
            nonce = None
            for m in _CHALLENGE.finditer(data):
                params = m.group(1)
                alg = _ALG.search(params)
                if alg is not None and alg.group(1).upper() == b"SHA-256":
                    n = _NONCE.search(params)
                    nonce = n.group(1).decode() if n else None
                    break
            if nonce is None:
                result.errors += 1
                finish_one()
                return
            cnonce = secrets.token_hex(4)
            resp = _h(f"{reg.ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
            auth = (f'Digest username="{reg.user}", realm="{realm}", nonce="{nonce}", '
                    f'uri="{uri}", algorithm=SHA-256, response="{resp}", qop=auth, '
                    f'nc=00000001, cnonce="{cnonce}"')
            reg.cseq += 1
            send(reg, auth)
            return
        if code == 200 and reg.cseq == 2:
            result.registered += 1
            result.auth_latencies.append(now - reg.sent)
            result.full_latencies.append(now - reg.started)
        else:
            result.errors += 1
        finish_one()

    if transport is None:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(on_data), local_addr=("127.0.0.1", 0))
        widen_buffers(transport)
    elif hook is not None:
        hook(on_data)
    local_port = transport.get_extra_info("sockname")[1]
    start = time.perf_counter()

    async def pacer() -> None:
        while next_index < len(users):
            due = int((time.perf_counter() - start) * rate) + 1
            while next_index < min(due, len(users)):
                start_next()
            await asyncio.sleep(0.005)

    if rate > 0:
        paced = asyncio.ensure_future(pacer())
    else:
        for _ in range(min(window, len(users))):
            start_next()

    async def reaper() -> None:
        while not done.is_set():
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            for b, r in list(pending.items()):
                if now - r.sent > TIMEOUT_S:
                    del pending[b]
                    result.timeouts += 1
                    finish_one()
                elif now >= r.retransmit_at and transport is not None:
                    # Timer E (RFC 3261 17.1.2.2): a lost datagram is sent again at T1, 2*T1...
                    r.interval = min(r.interval * 2, T2)
                    r.retransmit_at = now + r.interval
                    result.retransmissions += 1
                    transport.sendto(r.data, dest)

    task = asyncio.ensure_future(reaper())
    try:
        await asyncio.wait_for(done.wait(), limit_s)
    except TimeoutError:
        pass
    result.elapsed = time.perf_counter() - start
    task.cancel()
    if rate > 0:
        paced.cancel()
    if own:
        transport.close()
    return result
