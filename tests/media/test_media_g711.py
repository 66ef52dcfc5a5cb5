"""G.711 against a reference built independently from the standard's tables.

ITU-T G.711 defines each law by its decision values and quantised (reconstruction) values,
segment by segment (tables 1a/1b for A-law, 2a/2b for mu-law).  The reference below rebuilds
those intervals from the segment end points and step sizes, then encodes each sample with a
scalar bisect -- no bit tricks shared with media.codecs.  For negative 16-bit samples the
magnitude is taken as -x-1 (one's complement), the convention of ITU-T G.191's g711 module.
"""

from __future__ import annotations

import bisect

import numpy as np
import pytest

from media.codecs import ALAW_DECODE, ULAW_DECODE, get_codec, transcode_table


def _mulaw_reference() -> tuple[list[float], list[float]]:
    """Decision values (upper bounds) and reconstruction values on the 14-bit scale (8159)."""
    # segment end points and step sizes, G.711 table 2a
    ends = [0, 31, 95, 223, 479, 991, 2015, 4063, 8159]
    steps = [2, 4, 8, 16, 32, 64, 128, 256]
    uppers: list[float] = [1.0]  # first interval [0, 1) reconstructs to 0
    recon: list[float] = [0.0]
    lo = 1.0
    for seg, step in enumerate(steps):
        hi_end = ends[seg + 1]
        while lo < hi_end:
            hi = lo + step
            uppers.append(hi)
            recon.append((lo + hi) / 2)
            lo = hi
    return uppers, recon


def _alaw_reference() -> tuple[list[float], list[float]]:
    """Decision values and reconstruction values on the 13-bit scale (4096), G.711 table 1a."""
    uppers: list[float] = []
    recon: list[float] = []
    lo = 0.0
    for seg in range(8):
        step = 2 if seg < 2 else 2**seg
        for _ in range(16):
            uppers.append(lo + step)
            recon.append(lo + step / 2)
            lo += step
    return uppers, recon


MU_UP, MU_RECON = _mulaw_reference()
A_UP, A_RECON = _alaw_reference()


def ref_mulaw(x: int) -> int:
    neg = x < 0
    v = ((-x - 1) if neg else x) / 4.0  # 16-bit -> 14-bit scale
    n = min(bisect.bisect_right(MU_UP, v), 127)
    return (0x7F - n) if neg else (0xFF - n)


def ref_alaw(x: int) -> int:
    neg = x < 0
    v = ((-x - 1) if neg else x) / 8.0  # 16-bit -> 13-bit scale
    n = min(bisect.bisect_right(A_UP, v), 127)
    return (n if neg else n | 0x80) ^ 0x55


def ref_mulaw_decode(code: int) -> int:
    neg = not code & 0x80
    n = (0x7F - code) if neg else (0xFF - code)
    # reconstruction values of table 2b, scaled from 14 to 16 bits
    val = int(MU_RECON[n] * 4) if n else 0
    return -val if neg else val


def ref_alaw_decode(code: int) -> int:
    v = code ^ 0x55
    val = int(A_RECON[v & 0x7F] * 8)
    return val if v & 0x80 else -val


def test_reference_tables_have_128_intervals() -> None:
    assert len(MU_UP) == 128 and MU_UP[-1] == 8159
    assert len(A_UP) == 128 and A_UP[-1] == 4096


@pytest.mark.parametrize(
    ("law", "ref"), [("PCMU", ref_mulaw), ("PCMA", ref_alaw)], ids=["mulaw", "alaw"]
)
def test_encoder_matches_reference_for_every_16bit_sample(law: str, ref) -> None:
    xs = np.arange(-32768, 32768, dtype=np.int32)
    got = np.frombuffer(get_codec(law).encode(xs.astype(np.int16)), np.uint8)
    want = np.array([ref(int(x)) for x in xs], np.uint8)
    bad = np.nonzero(got != want)[0]
    assert len(bad) == 0, f"first mismatch at x={xs[bad[0]]}: {got[bad[0]]:#x} != {want[bad[0]]:#x}"


def test_decoders_match_reference_reconstruction_values() -> None:
    for c in range(256):
        assert ULAW_DECODE[c] == ref_mulaw_decode(c), hex(c)
        assert ALAW_DECODE[c] == ref_alaw_decode(c), hex(c)


def test_known_code_points() -> None:
    mu = get_codec("PCMU")
    a = get_codec("PCMA")
    samples = np.array([0, 1, -1, 32767, -32768], np.int16)
    assert mu.encode(samples) == bytes([0xFF, 0xFF, 0x7F, 0x80, 0x00])
    assert a.encode(samples) == bytes([0xD5, 0xD5, 0x55, 0xAA, 0x2A])
    assert list(ULAW_DECODE[[0xFF, 0x7F, 0x80, 0x00]]) == [0, 0, 32124, -32124]
    assert list(ALAW_DECODE[[0xD5, 0x55, 0xAA, 0x2A]]) == [8, -8, 32256, -32256]


def test_decode_then_encode_is_identity_except_negative_zero() -> None:
    codes = np.arange(256, dtype=np.uint8).tobytes()
    mu = get_codec("PCMU")
    back = mu.encode(mu.decode(codes))
    assert [i for i in range(256) if back[i] != codes[i]] == [0x7F]  # -0 -> +0
    a = get_codec("PCMA")
    assert a.encode(a.decode(codes)) == codes


def test_quantisation_error_is_bounded_by_half_a_step() -> None:
    xs = np.arange(-32768, 32768, dtype=np.int32)
    for law in ("PCMU", "PCMA"):
        c = get_codec(law)
        err = np.abs(c.decode(c.encode(xs.astype(np.int16))).astype(np.int32) - xs)
        assert err.max() <= 1024  # half the largest step, plus the clipped top of the range
        assert err[np.abs(xs) < 100].max() <= 8


def test_transcode_tables_equal_decode_then_encode() -> None:
    mu, a = get_codec("PCMU"), get_codec("PCMA")
    codes = bytes(range(256))
    assert codes.translate(transcode_table("PCMU", "PCMA")) == a.encode(mu.decode(codes))
    assert codes.translate(transcode_table("PCMA", "PCMU")) == mu.encode(a.decode(codes))
    assert transcode_table("PCMA", "pcma") is None


def test_unknown_codec_is_named() -> None:
    with pytest.raises(KeyError, match="G729"):
        get_codec("G729")
