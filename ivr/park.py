"""Call park and retrieve (issue 16): the parked caller's application and the retriever's.

A user parks the call it is in by a blind transfer (REFER, RFC 3515) of the other party to
the park code (`*68`): the switch answers that party with `ParkedApp`, which takes the
lowest free orbit of the customer (`ParkingLot`), tells the *parked party* the orbit
(`park-parked`, then its digits: with a blind transfer the parker has already left) and
plays the customer's music on hold. The switch logs the orbit (`park call=... orbit=N
parker=...`) for the parker's operator console.

Anyone of the customer dials the retrieve code and the orbit (`*881`): `RetrieveApp`
answers, and the two are connected (`ParkDesk.retrieve`: the switch bridges both
endpoints through a two-party room). An empty orbit says `park-empty`. A parked call
nobody retrieves within the park timeout rings its parker again (`Transfer(parker)`); if
the parker does not answer either, the caller hears `unavailable`, `goodbye`.
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
    MusicOnHold,
    Play,
    Prompt,
    PromptFinished,
    Transfer,
    TransferFailed,
)
from ivr.transitions import next_state

log = logging.getLogger("ivr.park")

MAX_ORBITS = 20  # per customer
GUARD_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class PartnerLeft:
    """The other party of a retrieved call hung up (an extra event the switch delivers)."""


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Someone retrieved this parked call (an extra event the switch delivers)."""

    by: str


class ParkingLot:
    """One customer's orbits: which parked call waits on which orbit (pure)."""

    def __init__(self, orbits: int = MAX_ORBITS) -> None:
        self.orbits = orbits
        self.parked: dict[int, tuple[str, str]] = {}  # orbit -> (call id, parker)

    def park(self, call_id: str, parker: str) -> int | None:
        """The lowest free orbit for `call_id`, None when every orbit is taken."""
        for orbit in range(1, self.orbits + 1):
            if orbit not in self.parked:
                self.parked[orbit] = (call_id, parker)
                return orbit
        return None

    def take(self, orbit: int) -> tuple[str, str] | None:
        """Remove and return what waits on `orbit` (call id, parker)."""
        return self.parked.pop(orbit, None)

    def release(self, call_id: str) -> None:
        for orbit, (cid, _) in list(self.parked.items()):
            if cid == call_id:
                del self.parked[orbit]


class ParkDesk(Protocol):
    """What the park applications ask of the switch (`switch.services.park`)."""

    def park(self, call_id: str, parker: str, now: float) -> int | None: ...

    def unpark(self, call_id: str) -> None: ...

    def retrieve(self, orbit: str, call_id: str, by: str, now: float) -> bool: ...

    def hung_up(self, call_id: str) -> None: ...


class ParkState(Enum):
    ANSWERING = auto()
    PARKED = auto()
    RINGING_BACK = auto()
    CONNECTED = auto()  # retrieved: talking through the switch
    LEAVING = auto()
    ENDED = auto()


TRANSITIONS: dict[tuple[ParkState, str], ParkState] = {
    (ParkState.ANSWERING, "parked"): ParkState.PARKED,
    (ParkState.ANSWERING, "refuse"): ParkState.LEAVING,
    (ParkState.ANSWERING, "retrieved"): ParkState.CONNECTED,  # the retriever's side
    (ParkState.PARKED, "retrieved"): ParkState.CONNECTED,
    (ParkState.PARKED, "timeout"): ParkState.RINGING_BACK,
    (ParkState.RINGING_BACK, "failed"): ParkState.LEAVING,
    (ParkState.CONNECTED, "partner_left"): ParkState.ENDED,
    (ParkState.LEAVING, "done"): ParkState.ENDED,
    **{(s, "hung_up"): ParkState.ENDED for s in ParkState},
}


class _Machine(ApplicationBase):
    def __init__(self, info: CallInfo, desk: ParkDesk) -> None:
        self.info = info
        self.desk = desk
        self.state = ParkState.ANSWERING
        self._deadline: float | None = None

    def _go(self, event: str) -> None:
        self.state = next_state(TRANSITIONS, "park", self.state, event)

    def _leave(self, now: float, *prompts: str) -> list[Command]:
        self._go("refuse" if self.state is ParkState.ANSWERING else "failed")
        self._deadline = now + GUARD_SECONDS
        return [Play(tuple(Prompt(p) for p in (*prompts, "goodbye")), interruptible=False)]

    def next_deadline(self) -> float | None:
        return self._deadline

    def _hung_up(self) -> list[Command]:
        if self.state not in (ParkState.ENDED,):
            self.desk.hung_up(self.info.call_id)
        self._go("hung_up")
        self._deadline = None
        return []

    def _done(self, cause: str) -> list[Command]:
        self._go("done")
        self._deadline = None
        return [HangUp(cause)]


class ParkedApp(_Machine):
    """The parked party: orbit announcement, music on hold, ring-back after `timeout`."""

    def __init__(self, info: CallInfo, desk: ParkDesk, parker: str, timeout: float,
                 customer: str | None = None) -> None:
        super().__init__(info, desk)
        self.parker = parker
        self.timeout = timeout
        self.customer = customer
        self.orbit: int | None = None

    def receive(self, event: AppEvent | Retrieved | PartnerLeft, now: float) -> list[Command]:
        if self.state is ParkState.ENDED:
            return []
        if isinstance(event, FarEndHungUp):
            return self._hung_up()
        if self.state is ParkState.ANSWERING and isinstance(event, Answered):
            self.orbit = self.desk.park(self.info.call_id, self.parker, now)
            if self.orbit is None:
                log.info("park call=%s parker=%s refused: no free orbit", self.info.call_id,
                         self.parker)
                return self._leave(now, "unavailable")
            self._go("parked")
            self._deadline = now + self.timeout
            log.info("park call=%s orbit=%d parker=%s timeout=%.0f", self.info.call_id,
                     self.orbit, self.parker, self.timeout)
            digits = tuple(Prompt(f"digit-{d}") for d in str(self.orbit))
            return [Play((Prompt("park-parked"), *digits))]  # then the music
        if self.state is ParkState.PARKED:
            if isinstance(event, PromptFinished):
                return [MusicOnHold(self.customer)]
            if isinstance(event, Retrieved):
                self._go("retrieved")
                self._deadline = None
                log.info("park call=%s orbit=%s retrieved by=%s", self.info.call_id,
                         self.orbit, event.by)
            return []
        if self.state is ParkState.CONNECTED and isinstance(event, PartnerLeft):
            self._go("partner_left")
            return [HangUp("park: the retriever hung up")]
        if self.state is ParkState.RINGING_BACK and isinstance(event, TransferFailed):
            log.info("park call=%s ring-back to %s failed: %d", self.info.call_id,
                     self.parker, event.status)
            return self._leave(now, "unavailable")
        if self.state is ParkState.LEAVING and isinstance(event, PromptFinished):
            return self._done("park: goodbye")
        return []

    def handle_timer(self, now: float) -> list[Command]:
        if self._deadline is None or now < self._deadline:
            return []
        if self.state is ParkState.PARKED:
            self.desk.unpark(self.info.call_id)  # nobody retrieves it while it rings back
            self._go("timeout")
            self._deadline = None
            log.info("park call=%s orbit=%s not retrieved: ringing back %s",
                     self.info.call_id, self.orbit, self.parker)
            return [Transfer(self.parker)]
        if self.state is ParkState.LEAVING:
            return self._done("park: goodbye timed out")
        return []


class RetrieveApp(_Machine):
    """The retriever: `*88` + orbit; connected to the parked call, or `park-empty`."""

    def __init__(self, info: CallInfo, desk: ParkDesk, orbit: str) -> None:
        super().__init__(info, desk)
        self.orbit = orbit

    def receive(self, event: AppEvent | PartnerLeft, now: float) -> list[Command]:
        if self.state is ParkState.ENDED:
            return []
        if isinstance(event, FarEndHungUp):
            return self._hung_up()
        if self.state is ParkState.ANSWERING and isinstance(event, Answered):
            if not self.desk.retrieve(self.orbit, self.info.call_id, self.info.caller, now):
                log.info("park retrieve call=%s orbit=%s: empty", self.info.call_id,
                         self.orbit)
                return self._leave(now, "park-empty")
            self._go("retrieved")
            return []
        if self.state is ParkState.CONNECTED and isinstance(event, PartnerLeft):
            self._go("partner_left")
            return [HangUp("park: the parked caller hung up")]
        if self.state is ParkState.LEAVING and isinstance(event, PromptFinished):
            return self._done("park: goodbye")
        return []

    def handle_timer(self, now: float) -> list[Command]:
        if self.state is ParkState.LEAVING and self._deadline is not None and now >= self._deadline:
            return self._done("park: goodbye timed out")
        return []
