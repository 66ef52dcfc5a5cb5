"""Subscription fan-out (issue 17): one user watched by 200 phones.

200 raw UDP subscribers on 127.0.0.1 (one socket each, as 200 desk phones) subscribe to the
presence of 501410, through digest (407 then SUBSCRIBE with credentials). Then 501410's
phone registers and unregisters, ROUNDS times: each change is one presence NOTIFY to every
watcher. Figures:

- CPU of the switch process per NOTIFY (the NOTIFY, its 200 OK and the transaction; the
  REGISTER that caused the change is included, shared by the 200 NOTIFYs);
- time from the REGISTER leaving the phone to the first and to the last NOTIFY arriving
  (the switch NOTIFYs from the registrar's change, before the binding's commit).

The switch runs as its own process pinned to core 0; this process (the phones) takes core 1.

    python -m bench.bench_subscriptions            # or through `make bench`
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import socket
import tempfile
import time
from pathlib import Path

from bench.common import (
    bench_switch,
    percentile,
    pin_to_core,
    process_cpu_seconds,
    report,
)
from scenarios.switchproc import EXAMPLE_CONFIG, run_config
from switch.sip import Request, Response, parse_message
from tests.support.subclient import Subscriber, digest_header

WATCHERS = int(os.environ.get("BENCH_SUBS_WATCHERS", "200"))
ROUNDS = int(os.environ.get("BENCH_SUBS_ROUNDS", "20"))
WATCHED = "501410"
WATCHER_USERS = ("501411", "501412", "501420")  # demo accounts: password demo-<user>


class Phone:
    """The watched user's phone: REGISTER (401, then with credentials) from its socket."""

    def __init__(self, host: str, port: int) -> None:
        self.dest = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)
        self.port = self.sock.getsockname()[1]
        self.call_id = secrets.token_hex(8)
        self.cseq = 0

    def _register(self, expires: int, auth: tuple[str, str] | None) -> bytes:
        self.cseq += 1
        lines = [
            "REGISTER sip:127.0.0.1 SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            "Max-Forwards: 70", f"From: <sip:{WATCHED}@127.0.0.1>;tag=ph{self.cseq}",
            f"To: <sip:{WATCHED}@127.0.0.1>", f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER", f"Contact: <sip:{WATCHED}@127.0.0.1:{self.port}>",
            f"Expires: {expires}"]
        if auth is not None:
            lines.append(f"{auth[0]}: {auth[1]}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    def challenge(self) -> str:
        self.sock.sendto(self._register(3600, None), self.dest)
        resp = parse_message(self.sock.recv(65535))
        assert isinstance(resp, Response) and resp.status == 401, resp
        return resp.headers.get("WWW-Authenticate") or ""

    def register(self, expires: int, challenge: str) -> float:
        """Send an authenticated REGISTER; the time it left (its 200 is read later)."""
        auth = digest_header(challenge, user=WATCHED, password=f"demo-{WATCHED}",
                             method="REGISTER", uri="sip:127.0.0.1", header="Authorization")
        data = self._register(expires, auth)
        sent = time.perf_counter()
        self.sock.sendto(data, self.dest)
        return sent


def _answer(sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    keep = [ln for ln in head.split("\r\n")[1:]
            if ln.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
    sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep)
                 + "\r\nContent-Length: 0\r\n\r\n").encode(), addr)


def collect(subs: list[Subscriber], expect: str, timeout: float = 10.0) -> list[float]:
    """Answer NOTIFYs until every watcher got one whose body holds `expect`; arrival times."""
    sel = selectors.DefaultSelector()
    for s in subs:
        s.sock.setblocking(False)
        sel.register(s.sock, selectors.EVENT_READ, s)
    arrived: dict[int, float] = {}
    end = time.monotonic() + timeout
    try:
        while len(arrived) < len(subs) and time.monotonic() < end:
            for key, _ in sel.select(0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                while True:
                    try:
                        data, addr = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    now = time.perf_counter()
                    msg = parse_message(data)
                    if isinstance(msg, Request) and msg.method == "NOTIFY":
                        _answer(sock, data, addr)
                        if expect.encode() in msg.body:
                            arrived.setdefault(id(key.data), now)
    finally:
        sel.close()
    return sorted(arrived.values())


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wte-bench-subs-"))
    config = run_config(tmp, EXAMPLE_CONFIG, {"subscriptions.max_per_user": 10_000,
                                              "subscriptions.max_per_source": 10_000,
                                              "auth.max_failures": 100_000})
    running = bench_switch(config)
    pin_to_core(os.getpid(), 1)
    subs: list[Subscriber] = []
    try:
        t0 = time.perf_counter()
        for i in range(WATCHERS):
            user = WATCHER_USERS[i % len(WATCHER_USERS)]
            s = Subscriber(user, f"demo-{user}", running.host, running.port)
            resp = s.subscribe(WATCHED, "presence", expires=3600)
            if resp.status != 200:
                raise RuntimeError(f"SUBSCRIBE {i}: {resp.status} {resp.reason}")
            subs.append(s)
        setup = time.perf_counter() - t0
        for s in subs:
            s.pump(0.0)
        phone = Phone(running.host, running.port)
        latency_first: list[float] = []
        latency_last: list[float] = []
        cpu0 = process_cpu_seconds(running.proc.pid)
        wall0 = time.perf_counter()
        for r in range(ROUNDS):
            expires, expect = (3600, "<basic>open</basic>") if r % 2 == 0 else \
                (0, "<basic>closed</basic>")
            challenge = phone.challenge()  # a fresh nonce per change (stateless 401)
            sent = phone.register(expires, challenge)
            times = collect(subs, expect)
            if len(times) < WATCHERS:
                raise RuntimeError(f"round {r}: {len(times)}/{WATCHERS} NOTIFYs arrived")
            latency_first.append(times[0] - sent)
            latency_last.append(times[-1] - sent)
            phone.sock.recv(65535)  # the REGISTER's 200
            time.sleep(0.05)  # let the 200 OKs of the NOTIFYs settle before the next change
        wall = time.perf_counter() - wall0
        cpu = process_cpu_seconds(running.proc.pid) - cpu0
        notifies = ROUNDS * WATCHERS
        log = running.log_text()
        report(f"subscriptions: {WATCHERS} watchers of one user, {ROUNDS} presence changes", [
            ("SUBSCRIBE setup (407 + 200 + first NOTIFY)",
             f"{setup / WATCHERS * 1000:.2f} ms per watcher, sequential"),
            ("NOTIFYs sent and answered", f"{notifies}"),
            ("switch CPU per NOTIFY", f"{cpu / notifies * 1e6:.0f} us "
                                      f"(incl. its 200 OK and the REGISTER share)"),
            ("switch CPU per change", f"{cpu / ROUNDS * 1000:.1f} ms for {WATCHERS} NOTIFYs"),
            ("change -> first NOTIFY", f"p50 {percentile(latency_first, 50) * 1000:.1f} ms"),
            ("change -> last NOTIFY",
             f"p50 {percentile(latency_last, 50) * 1000:.1f} ms, "
             f"max {max(latency_last) * 1000:.1f} ms"),
            ("wall time of the rounds", f"{wall:.2f} s (with 50 ms pauses)"),
            ("handler errors in the log", str(len(re.findall(r"handler failed", log)))),
        ])
    finally:
        for s in subs:
            s.close()
        running.stop()


if __name__ == "__main__":
    main()
