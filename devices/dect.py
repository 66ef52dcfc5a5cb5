"""DECT bases and handsets (service description 2.5 and 3.2.2). Pure.

A DECT base is one device: one MAC, one IP address and port toward the switch. Each of its
handsets is a line of a user or a workspace with credentials of its own; the base registers
every line from its single address, with one Contact per handset (`sip:hs2@base`), so a
call to a line rings its handset only. Nothing in the registrar is special for a base: the
bindings of different accounts never mix, and `Binding.destination()` sends each INVITE to
the base's address with the handset's Contact as the Request-URI.

What is specific to bases lives here: which handset slot a newly provisioned line takes
(`assign_handsets`), and the view of bindings as bases and their handsets (`group_bases`)
for the inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .location import Binding


class HandsetError(Exception):
    """No free handset slot for a line; `status` is the HTTP status to answer."""

    def __init__(self, reason: str, status: int = 409) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def assign_handsets(taken: Iterable[int], count: int, capacity: int) -> list[int]:
    """The lowest free handset slots (1-based) for `count` new lines on a base that holds
    `capacity` handsets and already uses the slots `taken`."""
    used = set(taken)
    free = [i for i in range(1, capacity + 1) if i not in used]
    if count > len(free):
        raise HandsetError(f"this base holds {capacity} handsets; {len(free)} slot(s) free, "
                           f"{count} asked")
    return free[:count]


def assign_lines(known: Sequence[tuple[str, int]], new_aors: Sequence[str],
                 capacity: int) -> tuple[list[int], set[int]]:
    """Slots for lines a device claims now, given the (aor, slot) lines it already has:
    (slot of each new line in order, slots whose old credential the new one replaces).

    A line the device already serves keeps its slot and gets a new credential (a phone
    reset to factory settings claims a new code); a single-line device is reassigned
    whole; other lines take the lowest free slots (a DECT base's handsets)."""
    if capacity == 1:
        if len(new_aors) != 1:
            raise HandsetError("this device serves one line")
        return [1], {line for _, line in known}
    slot_of: dict[str, int] = {}
    for aor, line in known:
        slot_of.setdefault(aor, line)
    reused: dict[str, int] = {}
    for aor in new_aors:
        if aor in slot_of and aor not in reused:
            reused[aor] = slot_of[aor]
    replaced = set(reused.values()) | {line for aor, line in known if aor in reused}
    taken = [line for _, line in known if line not in replaced] + list(replaced)
    fresh = iter(assign_handsets(taken, len(new_aors) - len(reused), capacity))
    slots = []
    for aor in new_aors:
        slots.append(reused.pop(aor) if aor in reused else next(fresh))
    return slots, replaced


@dataclass(frozen=True, slots=True)
class Handset:
    aor: str
    contact: str


@dataclass(frozen=True, slots=True)
class BaseView:
    """The lines a base registers from one address (transport, host, port)."""

    transport: str
    host: str
    port: int
    user_agent: str
    handsets: tuple[Handset, ...]


def group_bases(bindings: Sequence[Binding]) -> list[BaseView]:
    """Bindings of several accounts sharing one source address and User-Agent: a base (or
    any multi-line device) and its handsets. Single-line devices are left out."""
    groups: dict[tuple[str, str, int, str], list[Binding]] = {}
    for b in bindings:
        groups.setdefault((b.transport, b.source_host, b.source_port, b.user_agent),
                          []).append(b)
    out = []
    for (transport, host, port, ua), members in groups.items():
        if len({b.aor for b in members}) < 2:
            continue
        out.append(BaseView(transport, host, port, ua,
                            tuple(Handset(b.aor, b.contact) for b in members)))
    return out
