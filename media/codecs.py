"""Audio codecs behind one interface; G.711 mu-law and A-law by lookup tables (ITU-T G.711).

The encoders follow the G.711 quantisation (section 2 and tables 1a/2a) applied to 16-bit
linear PCM the way ITU-T G.191's reference does: the magnitude of a negative sample ``x`` is
taken as ``~x`` (one's complement), so that -1 and +1 both map to the "zero" characters
(mu-law 0x7F/0xFF, A-law 0x55/0xD5).  The full 65536-entry encode tables and the 256-entry
decode tables are computed once with numpy at import; encoding a frame is one fancy index.

G.722 and Opus plug in by implementing :class:`Codec` and calling :func:`register`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Pcm = NDArray[np.int16]


class Codec(Protocol):
    """What the media engine needs from a codec.  Frames are int16 at ``sample_rate``."""

    name: str
    clock_rate: int  # RTP timestamp rate (G.722: 8000 although it samples at 16000)
    sample_rate: int
    static_payload_type: int | None

    def encode(self, pcm: Pcm) -> bytes: ...

    def decode(self, payload: bytes) -> Pcm: ...


def _mulaw_encode_table() -> NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    neg = x < 0
    mag = np.where(neg, ~x, x) >> 2  # 14-bit magnitude, G.191 convention
    biased = np.minimum(mag, 8158) + 33  # 8159 is the last decision value; bias per G.711
    seg = np.floor(np.log2(biased)).astype(np.int32) - 5  # 0..7
    nib = (biased >> (seg + 1)) & 0x0F
    code = (seg << 4) | nib
    out = np.where(neg, code ^ 0x7F, code ^ 0xFF).astype(np.uint8)
    # reorder so that table[uint16 view of the sample] is its code
    return np.concatenate([out[32768:], out[:32768]])


def _mulaw_decode_table() -> NDArray[np.int16]:
    c = np.arange(256, dtype=np.int32)
    inv = ~c & 0xFF
    seg = (inv >> 4) & 7
    mag = ((((inv & 0x0F) << 3) + 0x84) << seg) - 0x84
    return np.where(inv & 0x80, -mag, mag).astype(np.int16)


def _alaw_encode_table() -> NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    neg = x < 0
    mag = np.where(neg, ~x, x) >> 4  # 12-bit magnitude (13-bit A-law scale / 2)
    seg = np.where(mag < 16, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 3)
    nib = np.where(seg == 0, mag, (mag >> np.maximum(seg - 1, 0)) & 0x0F)
    code = (seg << 4) | (nib & 0x0F)
    out = (np.where(neg, code, code | 0x80) ^ 0x55).astype(np.uint8)
    return np.concatenate([out[32768:], out[:32768]])


def _alaw_decode_table() -> NDArray[np.int16]:
    c = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (c >> 4) & 7
    nib = c & 0x0F
    mag = np.where(seg == 0, (nib << 4) + 8, ((nib << 4) + 0x108) << np.maximum(seg - 1, 0))
    return np.where(c & 0x80, mag, -mag).astype(np.int16)


ULAW_ENCODE = _mulaw_encode_table()
ULAW_DECODE = _mulaw_decode_table()
ALAW_ENCODE = _alaw_encode_table()
ALAW_DECODE = _alaw_decode_table()

#: byte translation tables for the relay: decode with one law, re-encode with the other
ULAW_TO_ALAW: bytes = ALAW_ENCODE[ULAW_DECODE.view(np.uint16)].tobytes()
ALAW_TO_ULAW: bytes = ULAW_ENCODE[ALAW_DECODE.view(np.uint16)].tobytes()


class G711:
    """G.711 with precomputed tables; ``name`` is the RTP encoding name (RFC 3551 table 4)."""

    name: str
    clock_rate: int = 8000
    sample_rate: int = 8000
    static_payload_type: int | None

    def __init__(self, name: str) -> None:
        if name == "PCMU":
            self._enc, self._dec, self.static_payload_type = ULAW_ENCODE, ULAW_DECODE, 0
        elif name == "PCMA":
            self._enc, self._dec, self.static_payload_type = ALAW_ENCODE, ALAW_DECODE, 8
        else:
            raise ValueError(f"not a G.711 encoding name: {name}")
        self.name = name
        self.silence = bytes(self._enc[np.zeros(1, np.int16).view(np.uint16)].tobytes())

    def encode(self, pcm: Pcm) -> bytes:
        return bytes(self._enc[np.asarray(pcm, dtype=np.int16).view(np.uint16)].tobytes())

    def decode(self, payload: bytes) -> Pcm:
        return self._dec[np.frombuffer(payload, dtype=np.uint8)]


_REGISTRY: dict[str, Codec] = {"PCMU": G711("PCMU"), "PCMA": G711("PCMA")}


def register(codec: Codec) -> None:
    """Add a codec (G.722, Opus...) under its RTP encoding name."""
    _REGISTRY[codec.name.upper()] = codec


def get_codec(name: str) -> Codec:
    """The codec for an SDP rtpmap encoding name; ``KeyError`` names the unknown one."""
    try:
        return _REGISTRY[name.upper()]
    except KeyError:
        raise KeyError(f"unsupported codec {name!r}; known: {sorted(_REGISTRY)}") from None


def transcode_table(src: str, dst: str) -> bytes | None:
    """A ``bytes.translate`` table converting G.711 payloads, or None when identical."""
    src, dst = src.upper(), dst.upper()
    if src == dst:
        return None
    if (src, dst) == ("PCMU", "PCMA"):
        return ULAW_TO_ALAW
    if (src, dst) == ("PCMA", "PCMU"):
        return ALAW_TO_ULAW
    raise KeyError(f"no byte transcoding from {src} to {dst}")
