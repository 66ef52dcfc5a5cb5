"""The PSAP call-back window (issue 7): for a while after an emergency call, a call from the
emergency service to the caller's site reaches the caller directly, ignoring DND,
forwarding and hunt rules, so that the service can call back a caller who was cut off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EmergencyCall:
    caller: str  # full internal number of the caller
    site: str  # site code
    customer: str
    number: str  # the emergency number dialed (112, 18...)
    at: float  # epoch seconds


class CallbackWindow:
    """Remembers the latest emergency call per site for `window` seconds."""

    def __init__(self, window: float = 1800.0) -> None:
        self.window = window
        self._by_site: dict[tuple[str, str], EmergencyCall] = {}

    def record(self, call: EmergencyCall) -> None:
        self._by_site[(call.customer, call.site)] = call

    def caller_for(self, customer: str, site: str, now: float) -> EmergencyCall | None:
        """The caller to ring for a call-back to `site`, if the window is still open."""
        call = self._by_site.get((customer, site))
        if call is None:
            return None
        if now - call.at > self.window:
            del self._by_site[(customer, site)]
            return None
        return call
