"""Conference rooms (issue 16): how many rooms of 10 participants one core mixes.

Each participant is the media path of a room member without the sockets: every 20 ms its
G.711 frame is decoded (as the endpoint's jitter buffer does), the room's `RoomMixer`
mixes all members with `mix_minus` (each hears everyone but themselves, plus the cues),
and every member's mix is encoded back to G.711 (as the endpoint sends it). The ticks run
on an asyncio loop at 20 ms deadlines (`loop.call_at`), in this one process pinned to one
core. "Added jitter" is how late the last member's frame is ready after the tick's deadline
(p99 minus the minimum over the run): a room level passes when it stays under 5 ms.
CPU per participant is the process CPU time over the run, per participant.

The sockets' share (receive and send of the same RTP packets) is what `bench_media`'s
relay figures measure; add both for a whole-node estimate.

    .venv/bin/python -m bench bench_conference
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, pin_to_core, report
from media.codecs import get_codec
from media.conference import FRAME, JOIN_CUE, RoomFeed, RoomMixer

PARTICIPANTS = 10
LEVELS = (10, 25, 50, 100, 200, 300, 400, 600)
SECONDS = 3.0
JITTER_LIMIT_MS = 5.0
RUNS = 2


def _payloads(codec_name: str) -> list[bytes]:
    """One 20 ms G.711 frame per participant: a tone of its own frequency."""
    codec = get_codec(codec_name)
    t = np.arange(FRAME) / 8000
    return [codec.encode((8000 * np.sin(2 * np.pi * (300 + 97 * i) * t)).astype(np.int16))
            for i in range(PARTICIPANTS)]


async def run_level(rooms: int) -> dict[str, float]:
    codec = get_codec("PCMU")
    payloads = _payloads("PCMU")
    mixers: list[RoomMixer[int]] = []
    feeds: list[list[RoomFeed]] = []
    for _ in range(rooms):
        mixer: RoomMixer[int] = RoomMixer()
        for k in range(PARTICIPANTS):
            mixer.add(k)
        mixer.play_to_all(JOIN_CUE)
        mixers.append(mixer)
        feeds.append([RoomFeed() for _ in range(PARTICIPANTS)])
    loop = asyncio.get_running_loop()
    ticks = int(SECONDS / 0.020)
    late: list[float] = []
    done = loop.create_future()
    start = loop.time() + 0.05
    sent = 0

    def tick(n: int, deadline: float) -> None:
        nonlocal sent
        for mixer, room_feeds in zip(mixers, feeds, strict=True):
            for k in range(PARTICIPANTS):  # what each endpoint received
                mixer.feed(k, codec.decode(payloads[k]))
            for k, pcm in mixer.tick().items():
                room_feeds[k].push(pcm)
            for feed in room_feeds:  # what each endpoint sends
                codec.encode(feed.read(FRAME))
                sent += 1
        late.append((loop.time() - deadline) * 1000)
        if n + 1 < ticks:
            nxt = start + (n + 1) * 0.020
            loop.call_at(nxt, tick, n + 1, nxt)
        else:
            done.set_result(None)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    loop.call_at(start, tick, 0, start)
    await done
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    participants = rooms * PARTICIPANTS
    base = min(late)
    return {
        "rooms": rooms, "participants": participants,
        "p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99),
        "added_jitter_p99_ms": percentile([x - base for x in late], 99),
        "cpu_share": cpu / wall,
        "cpu_us_per_participant_tick": cpu / (ticks * participants) * 1e6,
        "core_percent_per_participant": 100 * cpu / wall / participants,
        "frames": sent,
    }


async def main_async() -> list[dict[str, float]]:
    """Each level twice, the steadier run kept (another process's burst on a shared
    machine is not the mixer's jitter); stop after two failing levels in a row."""
    results = []
    failed = 0
    for rooms in LEVELS:
        runs = [await run_level(rooms) for _ in range(RUNS)]
        r = min(runs, key=lambda x: x["added_jitter_p99_ms"])
        results.append(r)
        failed = failed + 1 if r["added_jitter_p99_ms"] >= JITTER_LIMIT_MS else 0
        if failed >= 2 or r["cpu_share"] > 0.95:
            break
    return results


def main() -> None:
    pin_to_core(os.getpid(), 0)
    results = asyncio.run(main_async())
    rows = []
    for r in results:
        rows.append((f"{int(r['rooms'])} rooms x {PARTICIPANTS} ({int(r['participants'])})",
                     f"added jitter p99 {r['added_jitter_p99_ms']:.2f} ms, tick lateness "
                     f"p50 {r['p50_ms']:.2f} / p99 {r['p99_ms']:.2f} ms, core busy "
                     f"{100 * r['cpu_share']:.0f}%, {r['cpu_us_per_participant_tick']:.1f} us "
                     f"CPU per participant per 20 ms "
                     f"({r['core_percent_per_participant']:.3f}% of a core)"))
    ok = [r for r in results if r["added_jitter_p99_ms"] < JITTER_LIMIT_MS]
    best = max((int(r["rooms"]) for r in ok), default=0)
    rows.append(("rooms per core (< 5 ms added jitter)",
                 f"{best} rooms of {PARTICIPANTS} (the largest level measured that passed"
                 f"{'' if len(ok) < len(results) else '; every level passed'})"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows.append(("machine load average at the end", f"{load:.2f} (other processes share "
                 "the core: figures are a floor)"))
    report(f"conference mixing on one core ({SECONDS:.0f} s per level, best of {RUNS}, "
           "G.711 PCMU)", rows)


if __name__ == "__main__":
    main()
