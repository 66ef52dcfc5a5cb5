"""SRTP with SDES keys (RFC 4568) through pylibsrtp (libsrtp): a thin wrapper.

The SDP ``a=crypto`` line carries ``inline:<base64 of 30 octets: 16-octet master key +
14-octet salt>`` for AES_CM_128_HMAC_SHA1_80 (RFC 4568 section 6.2.1, RFC 3711).  Parsing the
line belongs to the SDP layer; media gets the suite and the key material.
"""

from __future__ import annotations

import base64
import os
from typing import Any

SUITES = {"AES_CM_128_HMAC_SHA1_80": 1, "AES_CM_128_HMAC_SHA1_32": 2}  # libsrtp profile ids
KEY_LEN = 30


class SrtpError(ValueError):
    pass


def new_key_b64() -> str:
    """Fresh master key + salt for our ``a=crypto`` line (RFC 4568 section 6.1)."""
    return base64.b64encode(os.urandom(KEY_LEN)).decode()


class SrtpContext:
    """One direction pair: protect what we send with our key, unprotect with the peer's."""

    def __init__(
        self, local_key_b64: str, remote_key_b64: str, suite: str = "AES_CM_128_HMAC_SHA1_80"
    ) -> None:
        try:
            import pylibsrtp
        except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
            raise SrtpError("SRTP needs pylibsrtp") from exc
        if suite not in SUITES:
            raise SrtpError(f"unsupported crypto suite {suite}")
        profile = SUITES[suite]
        local, remote = base64.b64decode(local_key_b64), base64.b64decode(remote_key_b64)
        if len(local) != KEY_LEN or len(remote) != KEY_LEN:
            raise SrtpError("SDES inline key must be 30 octets (key + salt)")
        tx = pylibsrtp.Policy(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        rx = pylibsrtp.Policy(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
        self._tx: Any = pylibsrtp.Session(policy=tx)
        self._rx: Any = pylibsrtp.Session(policy=rx)
        self._error: type[Exception] = pylibsrtp.Error

    def protect(self, rtp: bytes) -> bytes:
        return bytes(self._tx.protect(rtp))

    def unprotect(self, srtp: bytes) -> bytes:
        """Authenticate and decrypt; raises :class:`SrtpError` on a bad tag or a replay."""
        try:
            return bytes(self._rx.unprotect(srtp))
        except self._error as exc:
            raise SrtpError(str(exc)) from exc

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return bytes(self._tx.protect_rtcp(rtcp))

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect_rtcp(srtcp))
        except self._error as exc:
            raise SrtpError(str(exc)) from exc
