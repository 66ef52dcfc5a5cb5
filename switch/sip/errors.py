"""Errors that carry the SIP status to answer with (DESIGN: errors carry the status)."""

from __future__ import annotations


class SipError(Exception):
    """Raised below the B2BUA; the owner of the server transaction answers `status`."""

    def __init__(self, status: int, reason: str, *, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers


class SipParseError(SipError):
    """A message (or one of its parts) could not be parsed.

    `status` is what a server answers when it can still build a response: 400 for bad
    syntax, 505 for an unsupported version, 413 for an oversized body, 513 for an oversized
    message, 416 for an unsupported Request-URI scheme.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(status, reason)
