"""The media engine: RTP/RTCP, G.711, DTMF, prompts, recording, mixing, relaying.

It never imports signalling; the SIP side hands it plain descriptions (address, port,
payload types, ptime).  Only :mod:`media.udp` and :mod:`media.clock` are asynchronous.
"""

from media.audio import AudioError, convert_prompt, decode_any, load_pcm, read_wav, write_wav
from media.codecs import Codec, get_codec, register
from media.dtmf import DtmfDigit, DtmfSource
from media.mixer import mix, mix_minus
from media.player import MusicOnHold
from media.recorder import RecordingResult, StopReason
from media.stats import RtpStats
from media.udp import MediaEndpoint, MediaEngine, PortsExhausted, Relay, RelayLeg

__all__ = [
    "AudioError",
    "Codec",
    "DtmfDigit",
    "DtmfSource",
    "MediaEndpoint",
    "MediaEngine",
    "MusicOnHold",
    "PortsExhausted",
    "RecordingResult",
    "Relay",
    "RelayLeg",
    "RtpStats",
    "StopReason",
    "convert_prompt",
    "decode_any",
    "get_codec",
    "load_pcm",
    "mix",
    "mix_minus",
    "read_wav",
    "register",
    "write_wav",
]
