"""The feature-code confirmation (issue 15): `*78`, `*21...`, `#21`... answer the call, say
what happened and hang up.

The change itself is decided and stored before this application starts (the switch routes
the forwarding destination as the user, checks its barring profile and writes the new
settings through to the database: `switch/services/personal.py`), so the caller never
hears "activated" for a setting that a restart would lose. This application only tells
the outcome: `feature-on`, `feature-off`, `feature-refused` or `feature-not-available`.
"""

from __future__ import annotations

import logging

from dialplan.user_settings import FeatureOutcome
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
    Tone,
)

log = logging.getLogger("ivr.feature_codes")

GUARD_SECONDS = 15.0  # hang up even if the prompt never reports its end


class FeatureConfirmation(ApplicationBase):
    """A short tone, the outcome's prompt, then hang up."""

    def __init__(self, info: CallInfo, outcome: FeatureOutcome, feature: str) -> None:
        self.info = info
        self.outcome = outcome
        self.feature = feature
        self._deadline: float | None = None
        self._done = False

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self._done:
            return []
        if isinstance(event, Answered):
            self._deadline = now + GUARD_SECONDS
            log.info("feature code call=%s caller=%s feature=%s outcome=%s", self.info.call_id,
                     self.info.caller, self.feature, self.outcome.value)
            return [Play((Tone(880.0, 0.2), Prompt(self.outcome.value)), interruptible=False)]
        if isinstance(event, PromptFinished):
            return self._end(f"feature {self.feature}: {self.outcome.value}")
        if isinstance(event, FarEndHungUp):
            self._done = True
        return []

    def next_deadline(self) -> float | None:
        return None if self._done else self._deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self._deadline is not None and now >= self._deadline and not self._done:
            return self._end("feature confirmation timed out")
        return []

    def _end(self, cause: str) -> list[Command]:
        self._done = True
        self._deadline = None
        return [HangUp(cause)]
