"""Conference rooms from YAML (issue 16): a customer's meet-me rooms, a user's conference PIN.

    conference_rooms:                 # under a customer; dialled *71 + the number
      - number: "800"                 # 1-6 digits, unique in the customer
        name: Salle de crise
        pin: "4321"                   # optional, 4-8 digits
        owner: "501410"               # optional, a user's full number (no PIN, owner's keys)

A Suite-pack user's personal conference number (`*72`, or `*72` + the extension for the
others) takes its PIN from the user's `conference_pin:` (4-8 digits, optional). Every
error names file, line and field.
"""

from __future__ import annotations

from typing import Any

from .fields import Reader
from .model import ConferenceRoom, Entity, User
from .packs import Pack
from .yamlsource import PathKey

ROOM_KEYS = frozenset({"number", "name", "pin", "owner"})
PIN_LENGTH = (4, 8)
NUMBER_LENGTH = (1, 6)


def _pin(r: Reader, m: dict[str, Any], path: PathKey, key: str) -> str | None:
    pin = r.text(m, path, key)
    if pin is None:
        return None
    lo, hi = PIN_LENGTH
    if not pin.isdigit() or not lo <= len(pin) <= hi:
        r.err((*path, key), f"must be {lo} to {hi} digits")
        return None
    return pin


def conference_pin(r: Reader, m: dict[str, Any], path: PathKey, pack: Pack | None
                   ) -> str | None:
    """A user's `conference_pin:`: only a Suite-pack user has a personal conference number
    (annex 16.1, "PCN")."""
    pin = _pin(r, m, path, "conference_pin")
    if pin is not None and pack is not None and pack is not Pack.SUITE:
        r.err((*path, "conference_pin"), "only a suite-pack user has a personal conference "
              f"number (pack {pack.value})")
        return None
    return pin


def parse_conference_rooms(r: Reader, m: dict[str, Any], path: PathKey,
                           full_numbers: dict[str, Entity]) -> dict[str, ConferenceRoom]:
    rooms: dict[str, ConferenceRoom] = {}
    for i, raw in enumerate(r.seq(m, path, "conference_rooms")):
        p = (*path, "conference_rooms", i)
        rm = r.mapping(raw, p, ROOM_KEYS)
        number = r.text(rm, p, "number", required=True)
        if number is None:
            continue
        lo, hi = NUMBER_LENGTH
        if not number.isdigit() or not lo <= len(number) <= hi:
            r.err((*p, "number"), f"must be {lo} to {hi} digits (dialled after the room code)")
            continue
        if number in rooms:
            r.err((*p, "number"), f"room {number} is defined twice")
            continue
        owner = r.text(rm, p, "owner")
        if owner is not None and not isinstance(full_numbers.get(owner), User):
            r.err((*p, "owner"), f"no user {owner!r} in this customer (a full internal number)")
            owner = None
        rooms[number] = ConferenceRoom(
            number=number, name=r.text(rm, p, "name", default=f"room {number}") or number,
            pin=_pin(r, rm, p, "pin"), owner=owner)
    return rooms
