"""Mailbox PINs: stored as a salted hash, compared in constant time.

Format: ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` (so the cost can be raised
later without breaking stored PINs: each hash carries its own parameters).

Why PBKDF2-HMAC-SHA256 with a modest iteration count, not scrypt: a mailbox PIN has 4 to 8
digits, at most 10^8 values, so no key-derivation cost makes a stolen hash safe against an
offline search; what the hash buys is that PINs never sit in clear in the database, its
backups or a dump, and that each guess costs some work. The real protection is online:
three wrong PINs end the call, and every failure counts in the switch's failure guard
(devices/guard.py). The verification runs on the event loop during a call, so it must stay
in the milliseconds (scrypt's memory-hard default costs tens of megabytes per check).
"""

from __future__ import annotations

import hashlib
import hmac
import os

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 20_000
MIN_LENGTH = 4
MAX_LENGTH = 8


class PinFormatError(ValueError):
    """A PIN that is not 4 to 8 digits."""


def valid_pin(pin: str) -> bool:
    return pin.isdigit() and pin.isascii() and MIN_LENGTH <= len(pin) <= MAX_LENGTH


def _derive(pin: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode("ascii"), salt, iterations)


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The stored form of `pin` (a fresh random salt unless one is given, for tests)."""
    if not valid_pin(pin):
        raise PinFormatError(f"a PIN has {MIN_LENGTH} to {MAX_LENGTH} digits")
    salt = os.urandom(16) if salt is None else salt
    return f"{ALGORITHM}${iterations}${salt.hex()}${_derive(pin, salt, iterations).hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches `stored`; False for anything malformed (never raises)."""
    try:
        algorithm, iterations_s, salt_hex, hash_hex = stored.split("$")
        iterations = int(iterations_s)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(hash_hex)
    except ValueError:
        return False
    if algorithm != ALGORITHM or not 1 <= iterations <= 10_000_000:
        return False
    if not valid_pin(pin):
        # the same work as a real check: the answer time says nothing about the input
        _derive("0000", salt, iterations)
        return False
    return hmac.compare_digest(_derive(pin, salt, iterations), expected)


def demo_pin(full_number: str) -> str:
    """The PIN of a mailbox created on first use: the last four digits of the user's
    internal number (501410 -> 1410); the user changes it from the settings menu."""
    digits = "".join(c for c in full_number if c.isdigit())
    return digits[-4:].rjust(4, "0")
