"""Unguessable identifiers, cheaply: hex digits drawn from the OS CSPRNG a block at a time.

Tags, branches and Call-IDs (RFC 3261 19.3: at least 32 random bits; 8.1.1.4 and 8.1.1.7:
globally unique) and the random part of digest nonces are slices of one block of
`os.urandom` output, refilled when used up. Each slice is used once, so the identifiers are
as unpredictable as separate `os.urandom` calls, for one system call per few hundred
identifiers instead of one each (a profile showed the per-call version at 10 % of an
OPTIONS transaction). A forked child draws a fresh block, so parent and child never hand
out the same digits.

Not thread-safe by design: identifiers are made on the event loop thread.
"""

from __future__ import annotations

import os

_BLOCK = 4096  # bytes per refill: 8192 hex digits


class RandomHex:
    __slots__ = ("_digits", "_pos")

    def __init__(self) -> None:
        self._digits = ""
        self._pos = 0

    def refill(self) -> None:
        self._digits = os.urandom(_BLOCK).hex()
        self._pos = 0

    def take(self, n: int) -> str:
        """`n` hex digits (4 random bits each), never handed out before."""
        pos = self._pos
        end = pos + n
        if end > len(self._digits):
            if n > 2 * _BLOCK:
                return os.urandom((n + 1) // 2).hex()[:n]
            self.refill()
            pos, end = 0, n
        self._pos = end
        return self._digits[pos:end]


_source = RandomHex()
random_hex = _source.take
os.register_at_fork(after_in_child=_source.refill)
