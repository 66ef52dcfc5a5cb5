"""A user's personal call settings (issue 15): forwarding, do not disturb, privacy, call
waiting, personal ringing. Pure and immutable: routing reads a `UserSettings`; a feature
code computes the next one with `apply_feature` and the switch stores it
(`switch/services/user_settings.py`, `switch/storage/user_settings.py`).

Section 4.2 and annex 16.1 of the service description: "renvoi d'appel" (always, busy, no
answer, unreachable), "ne pas déranger", "masquer son numéro", "rejet des appels anonymes",
"double appel", "sonnerie simultanée", "sonnerie séquentielle".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from .packs import FeatureName

MAX_SIMULTANEOUS = 5  # extra numbers ringing with the phones
MIN_NO_ANSWER_SECONDS = 5.0
MAX_NO_ANSWER_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class SequentialStep:
    """One number of the sequential ring list and how long it rings."""

    number: str
    seconds: float


@dataclass(frozen=True, slots=True)
class UserSettings:
    """Everything a user sets for itself. Numbers are stored as dialed (`501411`,
    `0612345678`) and routed as the user at call time, so its barring profile applies."""

    forward_always: str | None = None
    forward_busy: str | None = None
    forward_no_answer: str | None = None
    forward_no_answer_seconds: float | None = None  # the ring time before forwarding
    forward_unreachable: str | None = None
    dnd: bool = False
    clir: bool = False  # permanent: withhold the identity on every call
    reject_anonymous: bool = False
    call_waiting: bool = True
    simultaneous: tuple[str, ...] = ()
    sequential: tuple[SequentialStep, ...] = ()


DEFAULT_SETTINGS = UserSettings()


class FeatureOutcome(Enum):
    """What the caller of a feature code hears."""

    ON = "feature-on"
    OFF = "feature-off"
    REFUSED = "feature-refused"
    NOT_AVAILABLE = "feature-not-available"


# feature -> (the field it sets, the value; None: the code's argument)
_SETTERS: dict[FeatureName, tuple[str, object]] = {
    FeatureName.DND_ON: ("dnd", True),
    FeatureName.DND_OFF: ("dnd", False),
    FeatureName.FORWARD_ALWAYS_ON: ("forward_always", None),
    FeatureName.FORWARD_ALWAYS_OFF: ("forward_always", ""),
    FeatureName.FORWARD_BUSY_ON: ("forward_busy", None),
    FeatureName.FORWARD_BUSY_OFF: ("forward_busy", ""),
    FeatureName.FORWARD_NO_ANSWER_ON: ("forward_no_answer", None),
    FeatureName.FORWARD_NO_ANSWER_OFF: ("forward_no_answer", ""),
    FeatureName.FORWARD_UNREACHABLE_ON: ("forward_unreachable", None),
    FeatureName.FORWARD_UNREACHABLE_OFF: ("forward_unreachable", ""),
    FeatureName.CLIR_ON: ("clir", True),
    FeatureName.CLIR_OFF: ("clir", False),
    FeatureName.ANONYMOUS_REJECTION_ON: ("reject_anonymous", True),
    FeatureName.ANONYMOUS_REJECTION_OFF: ("reject_anonymous", False),
    FeatureName.CALL_WAITING_ON: ("call_waiting", True),
    FeatureName.CALL_WAITING_OFF: ("call_waiting", False),
    FeatureName.SIMULTANEOUS_RING_ON: ("simultaneous", None),
    FeatureName.SIMULTANEOUS_RING_OFF: ("simultaneous", ()),
}

SETTING_FEATURES = frozenset(_SETTERS)
# features whose argument is a destination the user's barring profile must allow
DESTINATION_FEATURES = frozenset({
    FeatureName.FORWARD_ALWAYS_ON, FeatureName.FORWARD_BUSY_ON,
    FeatureName.FORWARD_NO_ANSWER_ON, FeatureName.FORWARD_UNREACHABLE_ON,
    FeatureName.SIMULTANEOUS_RING_ON,
})


def destination_of(feature: FeatureName, argument: str | None) -> str | None:
    """The number in a code's argument: `*61` takes `NUMBER` or `NUMBER*SECONDS` (the
    ring time before forwarding on no answer)."""
    if feature not in DESTINATION_FEATURES or not argument:
        return None
    number = argument.partition("*")[0] if feature is FeatureName.FORWARD_NO_ANSWER_ON \
        else argument
    return number if number.isdigit() else None


def apply_feature(settings: UserSettings, feature: FeatureName,
                  argument: str | None) -> tuple[UserSettings, FeatureOutcome]:
    """The settings after a feature code and what the caller hears. The destination's
    barring check is the caller's business (it needs the dialplan): call this once the
    destination is allowed. A feature that changes no setting is REFUSED."""
    setter = _SETTERS.get(feature)
    if setter is None:
        return settings, FeatureOutcome.REFUSED
    name, value = setter
    if value is None:  # takes the code's argument
        number = destination_of(feature, argument)
        if number is None:
            return settings, FeatureOutcome.REFUSED
        if feature is FeatureName.FORWARD_NO_ANSWER_ON:
            seconds = (argument or "").partition("*")[2]
            return replace(settings, forward_no_answer=number,
                           forward_no_answer_seconds=float(seconds) if seconds.isdigit()
                           else settings.forward_no_answer_seconds), FeatureOutcome.ON
        argument = number
        if name == "simultaneous":
            if argument in settings.simultaneous:
                return settings, FeatureOutcome.ON
            if len(settings.simultaneous) >= MAX_SIMULTANEOUS:
                return settings, FeatureOutcome.REFUSED
            return replace(settings, simultaneous=(*settings.simultaneous, argument)), \
                FeatureOutcome.ON
        return _set(settings, name, argument), FeatureOutcome.ON
    if value == "":  # a forwarding switched off
        return _set(settings, name, None), FeatureOutcome.OFF
    if value == ():
        return replace(settings, simultaneous=()), FeatureOutcome.OFF
    on = value is True
    return _set(settings, name, value), FeatureOutcome.ON if on else FeatureOutcome.OFF


def _set(settings: UserSettings, name: str, value: Any) -> UserSettings:
    changes: dict[str, Any] = {name: value}
    return replace(settings, **changes)


def no_answer_seconds(settings: UserSettings) -> float | None:
    """The ring time before forwarding on no answer (bounded), None when not forwarding."""
    if settings.forward_no_answer is None or settings.forward_no_answer_seconds is None:
        return None
    return min(MAX_NO_ANSWER_SECONDS,
               max(MIN_NO_ANSWER_SECONDS, settings.forward_no_answer_seconds))
