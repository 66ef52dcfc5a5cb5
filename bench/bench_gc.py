"""Garbage collector pauses with many transactions held for Timer J (issue 21).

Holds N completed non-INVITE server transactions (an OPTIONS answered 200 is kept 32 s on
UDP), records every automatic collection's pause by generation, then times explicit gen1 and
full collections. `serve` applies the switch's own policy (switch.app.tune_gc); `default` is
CPython's; `a,b,c` tries other thresholds (after the same gc.freeze()).

    python -m bench.bench_gc [N] [serve|default|a,b,c]
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

from switch.app import tune_gc
from switch.sip import make_response, parse_message
from switch.transaction import Peer, RequestReceived, TransactionLayer

_REQUEST = (
    "OPTIONS sip:bob@198.51.100.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{i}\r\n"
    "From: <sip:a@192.0.2.10>;tag=f{i}\r\nTo: <sip:bob@198.51.100.1>\r\nCall-ID: c{i}\r\n"
    "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def main(count: int, policy: str) -> None:
    if policy == "serve":
        tune_gc()
    elif policy != "default":
        gc.collect()
        gc.freeze()
        a, b, c = (int(x) for x in policy.split(","))
        gc.set_threshold(a, b, c)
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(watch)
    layer = TransactionLayer()
    peer = Peer("UDP", "192.0.2.10", 5060)
    t0 = time.perf_counter()
    for i in range(count):
        layer.receive(parse_message(_REQUEST.format(i=i).encode()), peer, 0.0)
        while (event := layer.next_event()) is not None:
            if isinstance(event, RequestReceived) and event.key is not None:
                layer.respond(event.key, make_response(event.request, 200), 0.0)
    built = time.perf_counter() - t0
    gc.callbacks.remove(watch)
    runs = "/".join(str(sum(g == k for g, _ in pauses)) for k in (0, 1, 2))
    worst = "/".join(f"{max([p for g, p in pauses if g == k] or [0.0]) * 1000:.0f}"
                     for k in (0, 1, 2))
    print(f"{policy} {gc.get_threshold()}: {count} transactions held in {built:.1f} s; "
          f"automatic collections gen0/1/2 {runs}, worst pause {worst} ms")
    for generation in (1, 2):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            gc.collect(generation)
            times.append(time.perf_counter() - t)
        print(f"  gc.collect({generation}): {min(times) * 1000:.0f} ms (best of 3), "
              f"{len(gc.get_objects())} tracked objects not frozen")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000,
         sys.argv[2] if len(sys.argv) > 2 else "serve")
