"""CPU per SIP message in the pure-Python parser and serialiser (issue 21).

A corpus of realistic messages (REGISTER with Authorization, INVITE with SDP and
Record-Route, its 200 OK, OPTIONS, BYE), each in many variants (fresh branch, tags and
Call-ID, as real traffic has: the name-addr cache misses on tags, the URI cache hits), is
parsed with every structured view forced (`check_structure`) and serialised again. A second
figure runs OPTIONS through the transaction layer as the switch does (parse, match, stamp
`received`, answer 200, serialise, timers).

The same code runs against a baseline tree (`BENCH_PARSER_BASE`, a git revision; default
the commit before the parser work), extracted with `git archive` and imported beside this
one under another package name; the two alternate run by run, so the speed-up printed is
measured now, under the same machine load. CPU time (process_time), best of the runs: the
machine is shared and the minimum is the least disturbed figure.

    python -m bench.bench_parser            # this tree and the baseline
    BENCH_PARSER_BASE= python -m bench.bench_parser   # this tree only
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = os.environ.get("BENCH_PARSER_BASE", "6a7f42c")
VARIANTS = 500  # distinct branches/tags/Call-IDs per message kind
REPEATS = int(os.environ.get("BENCH_PARSER_REPEATS", "15"))
PHONES = 10_000  # distinct phones re-registering (the operator's scale)

_SDP = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)

_REGISTER = (
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK{i}reg\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@example.com>;tag={i}f1\r\n'
    "To: <sip:alice@example.com>\r\n"
    "Call-ID: {i}-reg@192.0.2.10\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6>\"\r\n"
    'Authorization: Digest username="alice", realm="example.com", '
    'nonce="6a3f1b2c9d8e7f60{i}", uri="sip:example.com", '
    'response="0123456789abcdef0123456789abcdef", algorithm=MD5, cnonce="0a4f113b", '
    "qop=auth, nc=00000001\r\n"
    "Expires: 3600\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, MESSAGE\r\n"
    "User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
    "Content-Length: 0\r\n\r\n"
)

_INVITE = (
    "INVITE sip:501410@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK{i}inv\r\n"
    "Max-Forwards: 70\r\n"
    "Record-Route: <sip:192.0.2.200;lr>\r\n"
    "Record-Route: <sip:192.0.2.201;lr;transport=udp>\r\n"
    'From: "Alice" <sip:alice@example.com>;tag={i}f2\r\n'
    "To: <sip:501410@example.com>\r\n"
    "Call-ID: {i}-inv@192.0.2.10\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5060>\r\n"
    "Supported: replaces, timer, 100rel\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
    "Session-Expires: 1800\r\n"
    "User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {n}\r\n\r\n"
)

_OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{i}ok;received=192.0.2.1;rport=5060\r\n"
    "Record-Route: <sip:192.0.2.200;lr>\r\n"
    "From: <sip:+33562070410@example.com>;tag={i}f3\r\n"
    "To: <sip:501410@example.com>;tag={i}t3\r\n"
    "Call-ID: {i}-ok@192.0.2.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:501410@192.0.2.20:5060>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {n}\r\n\r\n"
)

_OPTIONS = (
    "OPTIONS sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{i}opt;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:probe@192.0.2.10>;tag={i}f4\r\n"
    "To: <sip:example.com>\r\n"
    "Call-ID: {i}-opt@192.0.2.10\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Accept: application/sdp\r\n"
    "Content-Length: 0\r\n\r\n"
)

_BYE = (
    "BYE sip:alice@192.0.2.10:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK{i}bye;rport\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:192.0.2.200;lr>\r\n"
    "From: <sip:501410@example.com>;tag={i}t5\r\n"
    'To: "Alice" <sip:alice@example.com>;tag={i}f5\r\n'
    "Call-ID: {i}-inv@192.0.2.10\r\n"
    "CSeq: 2 BYE\r\n"
    "Content-Length: 0\r\n\r\n"
)


def corpus() -> dict[str, list[bytes]]:
    sdp = _SDP.encode()
    out: dict[str, list[bytes]] = {}
    for name, template in (("REGISTER+auth", _REGISTER), ("INVITE+SDP+RR", _INVITE),
                           ("200 OK+SDP", _OK), ("OPTIONS", _OPTIONS), ("BYE", _BYE)):
        body = sdp if "{n}" in template else b""
        out[name] = [template.format(i=f"{i:08x}", n=len(body)).encode() + body
                     for i in range(VARIANTS)]
    return out


def cases(sip: Any, txn: Any) -> dict[str, tuple[Callable[[], int], ...]]:
    """name -> a run (returns the operations done) over one implementation's modules."""
    parse_message = sip.parse_message
    make_response = sip.make_response
    out: dict[str, tuple[Callable[[], int], ...]] = {}
    for name, messages in corpus().items():
        def parse(messages: list[bytes] = messages) -> int:
            for data in messages:
                parse_message(data).check_structure()
            return len(messages)

        parsed = [parse_message(m) for m in messages]

        def serialise(parsed: list[Any] = parsed) -> int:
            for _ in range(4):  # serialising is quick: a longer run for a steadier clock
                for msg in parsed:
                    msg.to_bytes()
            return 4 * len(parsed)

        out[f"parse {name}"] = (parse,)
        out[f"serialise {name}"] = (serialise,)

    # the registrar's steady state at the switch's scale: 10,000 phones, each re-registering
    # with its own To, Contact and From address and a From tag new in every request; every
    # run after the first is a round of re-registrations, as the address caches see them
    phones = [_REGISTER.replace("alice", f"u{p:05d}").format(i=f"{p:08x}", n=0).encode()
              .split(b";tag=", 1) for p in range(PHONES)]
    rounds = [0]

    def parse_phones(messages: list[list[bytes]] = phones) -> int:
        rounds[0] += 1
        tag = b";tag=r%d-" % rounds[0]  # joined below: a copy the parse would make anyway
        for head, tail in messages:
            parse_message(head + tag + tail).check_structure()
        return len(messages)

    out[f"parse REGISTER+auth from {PHONES:,} phones"] = (parse_phones,)

    options = corpus()["OPTIONS"]
    peer = txn.Peer("UDP", "192.0.2.99", 5099)  # differs from the Via: received is stamped
    request_received = txn.RequestReceived
    clock = [0.0]

    def transaction_path() -> int:
        layer = txn.TransactionLayer()
        now = clock[0]
        for data in options:
            now += 1e-4  # 10,000/s: Timer J (32 s) keeps every transaction in the heap
            layer.receive(parse_message(data), peer, now)
            while (event := layer.next_event()) is not None:
                if type(event) is request_received and event.key is not None:
                    layer.respond(event.key, make_response(event.request, 200), now)
            layer.handle_timer(now)
            layer.get_timer()
        clock[0] = now
        return len(options)

    out["OPTIONS via transaction layer, 200 sent"] = (transaction_path,)
    return out


def _cpu_per_op(run: Callable[[], int]) -> float:
    t0 = time.process_time()
    count = run()
    return (time.process_time() - t0) / count


def _load_baseline(ref: str, into: str) -> tuple[Any, Any] | None:
    """switch.sip and switch.transaction of git revision `ref`, imported as the package
    `wte_base_switch` (absolute imports renamed) so both trees live in this process."""
    try:
        tar = subprocess.run(
            ["git", "-C", str(REPO), "archive", ref, "switch/__init__.py", "switch/sip",
             "switch/transaction"], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.stdout.write(f"  (no baseline {ref!r}: {exc})\n")
        return None
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    root = Path(into) / "wte_base_switch"
    (Path(into) / "switch").rename(root)
    for path in root.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bswitch\.(sip|transaction)\b", r"wte_base_switch.\1", text))
    sys.path.insert(0, into)
    return (importlib.import_module("wte_base_switch.sip"),
            importlib.import_module("wte_base_switch.transaction"))


def main() -> None:
    import switch.sip
    import switch.transaction
    from switch.app import tune_gc

    now_cases = cases(switch.sip, switch.transaction)
    # the collector as the running switch has it: with Python's default thresholds, full
    # collections would walk the parsed objects the caches keep, a cost the switch never pays
    tune_gc()
    with tempfile.TemporaryDirectory(prefix="wte-bench-parser-") as tmp:
        base = _load_baseline(BASE, tmp) if BASE else None
        base_cases = cases(*base) if base is not None else {}
        now: dict[str, float] = {}
        before: dict[str, float] = {}
        for key, (run,) in now_cases.items():
            other = base_cases.get(key)
            best_now = best_before = float("inf")
            for _ in range(REPEATS):  # alternate run by run: both see the same machine load
                best_now = min(best_now, _cpu_per_op(run))
                if other is not None:
                    best_before = min(best_before, _cpu_per_op(other[0]))
            now[key] = best_now * 1e6
            if other is not None:
                before[key] = best_before * 1e6
    sys.stdout.write(f"\n== SIP parser and serialiser, CPU per message (best of {REPEATS} "
                     f"runs alternating with the baseline, {VARIANTS} variants each)\n")
    width = max(len(k) for k in now)
    head = f"  {'':<{width}}  {'us now':>8}"
    if before:
        head += f"  {'us ' + BASE[:10]:>14}  speed-up"
    sys.stdout.write(head + "\n")
    for key, value in now.items():
        line = f"  {key:<{width}}  {value:8.1f}"
        if key in before:
            line += f"  {before[key]:14.1f}  {before[key] / value:7.2f}x"
        sys.stdout.write(line + "\n")
    if before:
        parse_keys = [k for k in now if k.startswith("parse ")]
        total_now = sum(now[k] for k in parse_keys)
        total_before = sum(before[k] for k in parse_keys)
        sys.stdout.write(f"  {'parse, whole corpus':<{width}}  {total_now:8.1f}  "
                         f"{total_before:14.1f}  {total_before / total_now:7.2f}x\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
