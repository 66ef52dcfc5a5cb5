"""N-party conference mixing: everyone hears the sum of the others, never themselves.

Pure and vectorised: one int32 sum of all frames, then ``total - own`` per party, saturated to
int16 (clipping is a hard limit at full scale; no wrap-around ever).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

import numpy as np

from media.codecs import Pcm

K = TypeVar("K", bound=Hashable)


def mix_minus(frames: Mapping[K, Pcm]) -> dict[K, Pcm]:
    """For each party, the mix of all other parties' frames (all frames the same length)."""
    if not frames:
        return {}
    keys = list(frames)
    stack = np.stack([np.asarray(frames[k], dtype=np.int32) for k in keys])
    total = stack.sum(axis=0)
    out = np.clip(total[None, :] - stack, -32768, 32767).astype(np.int16)
    return {k: out[i] for i, k in enumerate(keys)}


def mix(frames: list[Pcm]) -> Pcm:
    """Plain sum of frames, saturated (what a listener outside the conference hears)."""
    if not frames:
        return np.zeros(0, np.int16)
    total = np.sum(np.stack([np.asarray(f, dtype=np.int32) for f in frames]), axis=0)
    out: Pcm = np.clip(total, -32768, 32767).astype(np.int16)
    return out
