"""Call pickup (issue 16, "interception"): the picker's application and the bridge's.

`*8` (group pickup) answers the oldest call ringing someone of the picker's pickup group
(the plan's `pickup_group:` of the users, else their site); `*87` + an extension
(directed pickup) the call ringing that user. `PickupApp` runs on the picker's call: it
asks the switch to pick a call up (`PickupDesk.pick`); the switch then rings the chosen
call's caller toward itself (one more leg of that ringing call, answered by the switch:
`BridgeApp`), so the caller's call is answered as by any phone and its other legs stop
ringing; both application endpoints are then joined in a two-party room. No call to
pick: `pickup-none`, `goodbye`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from ivr.park import PartnerLeft
from ivr.transitions import next_state

log = logging.getLogger("ivr.pickup")

CONNECT_SECONDS = 10.0  # the picked call must be bridged by then
GUARD_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class PickedUp:
    """The picked call's caller is connected to the picker (an extra event)."""

    caller: str


class PickupDesk(Protocol):
    """What the pickup applications ask of the switch (`switch.pickup`)."""

    def pick(self, call_id: str, now: float) -> str | None:
        """Start picking a call up for `call_id`; the picked call's Call-ID, or None."""
        ...

    def bridged(self, call_id: str, now: float) -> None:
        """The bridge application `call_id` answered the picked caller: join the picker."""
        ...

    def hung_up(self, call_id: str) -> None: ...


class PickupState(Enum):
    ANSWERING = auto()
    CONNECTING = auto()
    CONNECTED = auto()
    LEAVING = auto()
    ENDED = auto()


TRANSITIONS: dict[tuple[PickupState, str], PickupState] = {
    (PickupState.ANSWERING, "picking"): PickupState.CONNECTING,
    (PickupState.ANSWERING, "nothing"): PickupState.LEAVING,
    (PickupState.ANSWERING, "bridged"): PickupState.CONNECTED,  # the bridge's side
    (PickupState.CONNECTING, "picked_up"): PickupState.CONNECTED,
    (PickupState.CONNECTING, "nothing"): PickupState.LEAVING,
    (PickupState.CONNECTED, "partner_left"): PickupState.ENDED,
    (PickupState.LEAVING, "done"): PickupState.ENDED,
    **{(s, "hung_up"): PickupState.ENDED for s in PickupState},
}


class _Machine(ApplicationBase):
    def __init__(self, info: CallInfo, desk: PickupDesk) -> None:
        self.info = info
        self.desk = desk
        self.state = PickupState.ANSWERING
        self._deadline: float | None = None

    def _go(self, event: str) -> None:
        self.state = next_state(TRANSITIONS, "pickup", self.state, event)

    def next_deadline(self) -> float | None:
        return self._deadline

    def _common(self, event: AppEvent | PickedUp | PartnerLeft) -> list[Command] | None:
        if isinstance(event, FarEndHungUp):
            self.desk.hung_up(self.info.call_id)
            self._go("hung_up")
            self._deadline = None
            return []
        if self.state is PickupState.CONNECTED and isinstance(event, PartnerLeft):
            self._go("partner_left")
            return [HangUp("pickup: the other party hung up")]
        if self.state is PickupState.LEAVING and isinstance(event, PromptFinished):
            self._go("done")
            self._deadline = None
            return [HangUp("pickup: nothing to pick up")]
        return None


class PickupApp(_Machine):
    """The picker: `*8` or `*87` + extension."""

    def receive(self, event: AppEvent | PickedUp | PartnerLeft, now: float) -> list[Command]:
        if self.state is PickupState.ENDED:
            return []
        common = self._common(event)
        if common is not None:
            return common
        if self.state is PickupState.ANSWERING and isinstance(event, Answered):
            picked = self.desk.pick(self.info.call_id, now)
            if picked is None:
                log.info("pickup call=%s caller=%s: nothing to pick up", self.info.call_id,
                         self.info.caller)
                return self._nothing(now)
            self._go("picking")
            self._deadline = now + CONNECT_SECONDS
            log.info("pickup call=%s caller=%s picks call=%s", self.info.call_id,
                     self.info.caller, picked)
            return []
        if self.state is PickupState.CONNECTING and isinstance(event, PickedUp):
            self._go("picked_up")
            self._deadline = None
            log.info("pickup call=%s connected to %s", self.info.call_id, event.caller)
        return []

    def _nothing(self, now: float) -> list[Command]:
        self._go("nothing")
        self._deadline = now + GUARD_SECONDS
        return [Play((Prompt("pickup-none"), Prompt("goodbye")), interruptible=False)]

    def handle_timer(self, now: float) -> list[Command]:
        if self._deadline is None or now < self._deadline:
            return []
        if self.state is PickupState.CONNECTING:  # the picked call went away meanwhile
            self.desk.hung_up(self.info.call_id)
            return self._nothing(now)
        if self.state is PickupState.LEAVING:
            self._go("done")
            self._deadline = None
            return [HangUp("pickup: goodbye timed out")]
        return []


class BridgeApp(_Machine):
    """The switch's answer to the picked caller: joined to the picker at once."""

    def receive(self, event: AppEvent | PickedUp | PartnerLeft, now: float) -> list[Command]:
        if self.state is PickupState.ENDED:
            return []
        common = self._common(event)
        if common is not None:
            return common
        if self.state is PickupState.ANSWERING and isinstance(event, Answered):
            self._go("bridged")
            self.desk.bridged(self.info.call_id, now)
        return []
