"""Jitter buffer (reorder, loss, late, wrap, SSRC restart) and the drift-free media clock."""

from __future__ import annotations

import asyncio
import random

import numpy as np

from media.clock import MediaClock, TickSchedule
from media.jitter import BufferState, FrameKind, JitterBuffer


def frame(k: int) -> np.ndarray:
    return np.full(160, k + 1, np.int16)


def test_reordered_packets_come_out_in_order() -> None:
    jb = JitterBuffer(prefetch_ms=40)
    order = [0, 2, 1, 3, 5, 4, 6, 7]
    out = []
    for i, k in enumerate(order):
        jb.push(1000 + 160 * k, frame(k))
        if i >= 1:
            out.append(jb.pop())
    while len(out) < 8:
        out.append(jb.pop())
    assert [int(f.pcm[0]) for f in out] == [k + 1 for k in range(8)]
    assert all(f.kind is FrameKind.AUDIO for f in out)


def test_loss_is_concealed_with_fading_then_silence() -> None:
    jb = JitterBuffer(prefetch_ms=20)
    jb.push(0, np.full(160, 1000, np.int16))
    first = jb.pop()
    jb.push(160 * 5, frame(5))  # packets 1..4 lost
    out = [jb.pop() for _ in range(5)]
    assert first.kind is FrameKind.AUDIO
    assert [f.kind for f in out[:4]] == [FrameKind.CONCEALED] * 4
    levels = [int(np.abs(f.pcm.astype(int)).max()) for f in out[:4]]
    assert levels[0] <= 1000 and levels[0] > levels[1] > levels[2] and levels[3] == 0
    assert out[4].kind is FrameKind.AUDIO and out[4].pcm[0] == 6


def test_late_and_duplicate_packets_are_dropped() -> None:
    jb = JitterBuffer(prefetch_ms=20)
    jb.push(0, frame(0))
    jb.pop()
    assert jb.push(0, frame(0)) is False and jb.late == 1
    jb.push(160, frame(1))
    assert jb.push(160, frame(1)) is False and jb.duplicates == 1


def test_timestamp_wrap_and_other_ptime() -> None:
    jb = JitterBuffer(prefetch_ms=40)
    base = 0xFFFFFFFF - 200
    for k in range(4):  # 30 ms packets across the 32-bit wrap
        jb.push((base + 240 * k) & 0xFFFFFFFF, np.full(240, k + 1, np.int16))
    pcm = np.concatenate([jb.pop().pcm for _ in range(6)])
    assert list(pcm[:960]) == [1] * 240 + [2] * 240 + [3] * 240 + [4] * 240


def test_timestamp_jump_resynchronises() -> None:
    jb = JitterBuffer(prefetch_ms=20)
    jb.push(0, frame(0))
    jb.pop()
    jb.push(8000 * 50, frame(9))  # new talk spurt or SSRC restart, 50 s later
    assert jb.resyncs == 1
    assert jb.pop().pcm[0] == 10


def test_source_going_quiet_returns_to_filling() -> None:
    jb = JitterBuffer(prefetch_ms=20, plc_ms=60)
    jb.push(0, frame(0))
    jb.pop()
    kinds = [jb.pop().kind for _ in range(5)]
    assert kinds[-1] is FrameKind.SILENCE and jb.state is BufferState.FILLING


def test_jittery_arrivals_lose_nothing_within_the_buffer_depth() -> None:
    rng = random.Random(7)
    jb = JitterBuffer(prefetch_ms=60)
    arrivals = sorted((k * 0.02 + rng.uniform(0, 0.05), k) for k in range(200))
    out = []
    tick = 0
    for t, k in arrivals:
        while tick * 0.02 + 0.01 < t:
            out.append(jb.pop())
            tick += 1
        jb.push(160 * k, frame(k % 1000))
    out += [jb.pop() for _ in range(10)]
    audio = [f for f in out if f.kind is FrameKind.AUDIO]
    assert len(audio) == 200 and jb.late == 0


def test_schedule_has_no_drift_with_random_wakeup_latency() -> None:
    rng = random.Random(1)
    s = TickSchedule(start=100.0, period=0.02)
    now = 100.0
    ran = []
    for _ in range(180_000):  # one hour of 20 ms ticks
        now = max(now, s.next_deadline) + rng.uniform(0, 0.004)
        ran += s.due(now)[-1:]
    assert s.n == 180_000 and s.skipped == 0
    assert abs(ran[-1] - (100.0 + 179_999 * 0.02)) < 1e-6


def test_schedule_catches_up_then_skips() -> None:
    s = TickSchedule(start=0.0, period=0.02, max_catchup=3)
    assert s.due(0.0) == [0.0]
    assert s.due(0.001) == []
    assert s.due(0.045) == [0.02, 0.04]  # two ticks late: both run
    assert s.due(0.5) == [0.46, 0.48, 0.5] and s.skipped == 20
    assert abs(s.next_deadline - 0.52) < 1e-9


async def test_real_clock_short_run_measures_no_drift() -> None:
    clock = MediaClock()
    loop = asyncio.get_running_loop()
    seen: list[tuple[float, float]] = []
    clock.add(lambda nominal: seen.append((nominal, loop.time())))
    await clock.start()
    await asyncio.sleep(1.0)
    await clock.stop()
    start = seen[0][0]
    assert all(abs(n - (start + 0.02 * i)) < 1e-9 for i, (n, _) in enumerate(seen))
    late = [t - n for n, t in seen]
    assert 48 <= len(seen) <= 52
    assert max(late) < 0.015 and abs(late[-1] - late[0]) < 0.015
