"""Loading the wire-byte vectors of tests/vectors/sip (see its README.md)."""

from __future__ import annotations

from pathlib import Path

from switch.sip import Request, Response, parse_message

ROOT = Path(__file__).resolve().parent.parent / "vectors" / "sip"


def valid_paths() -> list[Path]:
    return sorted((ROOT / "valid").glob("*.sip"))


def invalid_paths() -> list[Path]:
    return sorted((ROOT / "invalid").glob("*.sip"))


def expected_status(path: Path) -> int:
    """`name.STATUS.sip` -> STATUS."""
    return int(path.name.split(".")[-2])


def parse_fully(data: bytes) -> Request | Response:
    """parse_message, then every lazily parsed view (Contact) too."""
    msg = parse_message(data)
    msg.check_structure()
    return msg
