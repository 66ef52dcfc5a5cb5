"""One step of an application's state machine, looked up in its transition table.

Each application keeps its own Enum and table (the house rule); this is only the lookup and
the error that names the machine, the state and the event when a pair is not in the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

S = TypeVar("S", bound=Enum)


def next_state(table: Mapping[tuple[S, str], S], machine: str, state: S, event: str) -> S:
    """The state after `event`, or ValueError when the table has no such transition."""
    nxt = table.get((state, event))
    if nxt is None:
        raise ValueError(f"{machine}: no transition {state.name} --{event}-->")
    return nxt
