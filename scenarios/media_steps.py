"""Media steps: DTMF, tones and WAV files, through whatever the engine offers."""

from __future__ import annotations

import math

from .engine import PhoneDriver, Pump, StepFailed
from .model import Step, StepKind


def tone_power(samples: list[float], frequency: float, rate: int) -> tuple[float, float]:
    """(share of the signal's energy at `frequency` (Goertzel), RMS level)."""
    n = len(samples)
    if n == 0:
        return 0.0, 0.0
    k = round(n * frequency / rate)
    w = 2 * math.pi * k / n
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    energy = sum(x * x for x in samples)
    rms = math.sqrt(energy / n)
    return (2 * power / (n * energy) if energy else 0.0), rms


async def media_step(ph: PhoneDriver, step: Step, pump: Pump) -> None:
    kind = step.kind
    if kind is StepKind.SEND_DTMF:
        ph.send_dtmf(step.digits, step.method)
    elif kind is StepKind.PLAY_TONE:
        ph.play_tone(step.frequency, step.seconds)
    elif kind is StepKind.PLAY_WAV:
        ph.play_wav(step.path)
    elif kind is StepKind.EXPECT_DTMF:
        got = [ph.dtmf_received()]

        def seen() -> bool:
            got[0] = ph.dtmf_received()
            return got[0].endswith(step.digits)

        if not await pump.until(seen, step.timeout):
            raise StepFailed(f"expected DTMF {step.digits!r}, got {got[0]!r}")
    elif kind in (StepKind.EXPECT_TONE, StepKind.EXPECT_SILENCE):
        samples, rate = await ph.listen(step.seconds, pump)
        if kind is StepKind.EXPECT_SILENCE:
            _, rms = tone_power(samples, 1000.0, rate)
            if rms > 200:
                raise StepFailed(f"expected silence, heard a signal of RMS {rms:.0f}")
            return
        share, rms = tone_power(samples, step.frequency, rate)
        if rms < 200 or share < 0.5:
            raise StepFailed(f"expected a {step.frequency:g} Hz tone, heard RMS {rms:.0f} with "
                             f"{share:.0%} of the energy at {step.frequency:g} Hz")
