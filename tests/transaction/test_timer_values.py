"""TimerConfig.duration gives the initial value of every timer of RFC 3261 section 17
(table 4 of appendix A) and RFC 6026, on unreliable and reliable transports."""

from __future__ import annotations

import pytest

from switch.transaction import Timer, TimerConfig

T1, T2, T4 = 0.5, 4.0, 5.0
EXPECTED: dict[Timer, tuple[float | None, float | None]] = {  # (UDP, reliable)
    Timer.A: (T1, None),  # 17.1.1.2: only on unreliable transports
    Timer.B: (64 * T1, 64 * T1),
    Timer.D: (32.0, 0.0),  # at least 32 s on UDP
    Timer.E: (T1, None),
    Timer.F: (64 * T1, 64 * T1),
    Timer.G: (T1, None),
    Timer.H: (64 * T1, 64 * T1),
    Timer.I: (T4, 0.0),
    Timer.J: (64 * T1, 0.0),
    Timer.K: (T4, 0.0),
    Timer.L: (64 * T1, 64 * T1),  # RFC 6026 8.7
    Timer.M: (64 * T1, 64 * T1),  # RFC 6026 8.4
}


@pytest.mark.parametrize("timer", list(Timer), ids=lambda t: t.value)
def test_initial_values(timer: Timer) -> None:
    config = TimerConfig(T1, T2, T4)
    assert (config.duration(timer, False), config.duration(timer, True)) == EXPECTED[timer]


def test_timer_d_follows_a_large_t1() -> None:
    assert TimerConfig(1.0, 4.0, 5.0).duration(Timer.D, False) == 64.0
