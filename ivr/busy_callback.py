"""Callback on busy (`*37`, "rappel automatique"), pure: who asked to be called back.

A user called another user of its customer who was busy, hung up, and dialed `*37`
within `REQUEST_WINDOW` seconds: the switch remembers the request; once both the busy
user and the caller are free (no call ringing or up on their phones), it rings the
caller first and, when the caller answers, the user it wanted (`switch.services.
busy_callback`, through `switch.originate`). A request not served within
`SERVE_WINDOW` seconds lapses. One request per caller: a new `*37` replaces the old.

Requests follow `TRANSITIONS`; the book never reads the clock (``now`` is passed in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum, auto

log = logging.getLogger("ivr.busy_callback")

REQUEST_WINDOW = 600.0  # seconds after the busy call during which *37 applies to it
SERVE_WINDOW = 1800.0  # seconds a request waits for both parties to be free


class RequestState(Enum):
    WAITING = auto()  # one of the two is still in a call
    CALLING = auto()  # the switch rings the caller (then the user)
    DONE = auto()  # connected, refused, or lapsed


TRANSITIONS: dict[tuple[RequestState, RequestState], str] = {
    (RequestState.WAITING, RequestState.CALLING): "both free",
    (RequestState.WAITING, RequestState.DONE): "lapsed or replaced",
    (RequestState.CALLING, RequestState.DONE): "answered or failed",
}


@dataclass(frozen=True, slots=True)
class Callback:
    """Ring `caller`, then connect it to `callee` (full internal numbers of `customer`)."""

    customer: str
    caller: str
    callee: str


@dataclass
class _Request:
    callback: Callback
    requested: float
    state: RequestState = RequestState.WAITING

    def go(self, state: RequestState) -> None:
        if (self.state, state) not in TRANSITIONS:
            raise RuntimeError(f"busy callback: {self.state.name} -> {state.name}")
        self.state = state


class BusyCallbackBook:
    """The busy calls users just made and their `*37` requests."""

    def __init__(self) -> None:
        self._last_busy: dict[tuple[str, str], tuple[str, float]] = {}
        self._requests: dict[tuple[str, str], _Request] = {}

    def busy(self, customer: str, caller: str, callee: str, now: float) -> None:
        """`caller`'s call to `callee` ended busy."""
        self._last_busy[(customer, caller)] = (callee, now)

    def request(self, customer: str, caller: str, now: float) -> str | None:
        """`*37`: the user to call back, or None (no busy call in the window)."""
        last = self._last_busy.get((customer, caller))
        if last is None or now - last[1] > REQUEST_WINDOW:
            return None
        old = self._requests.get((customer, caller))
        if old is not None and old.state is RequestState.CALLING:
            return None  # already being served
        self._requests[(customer, caller)] = _Request(Callback(customer, caller, last[0]), now)
        log.info("busy callback customer=%s caller=%s callee=%s event=requested", customer,
                 caller, last[0])
        return last[0]

    def due(self, in_calls: set[str], now: float) -> list[Callback]:
        """The requests whose two parties are both free now (``in_calls`` holds the
        "customer:number" keys of users in a call); they move to CALLING. Lapsed ones go."""
        out: list[Callback] = []
        for key, req in list(self._requests.items()):
            if req.state is not RequestState.WAITING:
                continue
            if now - req.requested > SERVE_WINDOW:
                req.go(RequestState.DONE)
                del self._requests[key]
                log.info("busy callback customer=%s caller=%s event=lapsed", *key)
                continue
            cb = req.callback
            if {f"{cb.customer}:{cb.caller}", f"{cb.customer}:{cb.callee}"} & in_calls:
                continue
            req.go(RequestState.CALLING)
            out.append(cb)
        return out

    def finished(self, callback: Callback) -> None:
        """The switch's call for `callback` was answered or failed: the request is over."""
        key = (callback.customer, callback.caller)
        req = self._requests.get(key)
        if req is not None and req.callback == callback and req.state is RequestState.CALLING:
            req.go(RequestState.DONE)
            del self._requests[key]

    def pending(self) -> int:
        return len(self._requests)


__all__ = ["REQUEST_WINDOW", "SERVE_WINDOW", "TRANSITIONS", "BusyCallbackBook", "Callback",
           "RequestState"]
