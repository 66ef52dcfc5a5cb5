"""Three-way calling (issue 16): a code merges the user's calls into a conference.

A user with a call on hold and an active one (two calls on the phone) dials the
three-way code (`*3`) on a third line: `ThreeWayApp` asks the switch to merge
(`MergeDesk.merge`); the switch moves the other party of each of the user's answered
calls into a room with this call (as a transfer would: the user's legs of those calls are
released) and everyone hears everyone but themselves. Nothing to merge:
`feature-refused`, `goodbye`. When the user hangs up, the conference ends (the others
are hung up: the switch never keeps two outside parties connected on its own).
"""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import Protocol

from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    Command,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
)
from ivr.transitions import next_state

log = logging.getLogger("ivr.three_way")

GUARD_SECONDS = 20.0


class MergeDesk(Protocol):
    def merge(self, call_id: str, now: float) -> int:
        """Move the user's other calls into this call's room: how many."""
        ...

    def hung_up(self, call_id: str) -> None: ...


class MergeState(Enum):
    ANSWERING = auto()
    MERGED = auto()
    LEAVING = auto()
    ENDED = auto()


TRANSITIONS: dict[tuple[MergeState, str], MergeState] = {
    (MergeState.ANSWERING, "merged"): MergeState.MERGED,
    (MergeState.ANSWERING, "nothing"): MergeState.LEAVING,
    (MergeState.LEAVING, "done"): MergeState.ENDED,
    **{(s, "hung_up"): MergeState.ENDED for s in MergeState},
}


class ThreeWayApp(ApplicationBase):
    def __init__(self, info: CallInfo, desk: MergeDesk) -> None:
        self.info = info
        self.desk = desk
        self.state = MergeState.ANSWERING
        self._deadline: float | None = None

    def _go(self, event: str) -> None:
        self.state = next_state(TRANSITIONS, "three-way", self.state, event)

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.state is MergeState.ENDED:
            return []
        if isinstance(event, FarEndHungUp):
            self.desk.hung_up(self.info.call_id)
            self._go("hung_up")
            self._deadline = None
            return []
        if self.state is MergeState.ANSWERING and isinstance(event, Answered):
            merged = self.desk.merge(self.info.call_id, now)
            log.info("three-way call=%s caller=%s merged=%d", self.info.call_id,
                     self.info.caller, merged)
            if merged:
                self._go("merged")
                return []
            self._go("nothing")
            self._deadline = now + GUARD_SECONDS
            return [Play((Prompt("feature-refused"), Prompt("goodbye")), interruptible=False)]
        if self.state is MergeState.LEAVING and isinstance(event, PromptFinished):
            return self._done("three-way: nothing to merge")
        return []

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self.state is MergeState.LEAVING and self._deadline is not None and now >= self._deadline:
            return self._done("three-way: goodbye timed out")
        return []

    def _done(self, cause: str) -> list[Command]:
        self._go("done")
        self._deadline = None
        return [HangUp(cause)]
