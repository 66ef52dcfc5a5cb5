"""Business-hour schedules ("calendrier d'ouverture") that hunt groups, queues and
auto-attendants consult to pick their closed-hours route.

A schedule is evaluated in the time zone of the site that owns the group; a naive datetime is
taken as that local time (what an operator types in `wte plan explain --at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Interval = tuple[int, int]  # minutes since midnight, [start, end)


class ScheduleMode(Enum):
    """The night switch ("basculement jour/nuit"): a customer admin forces a schedule open
    or closed, or lets it follow its hours and holidays again (AUTO, the default)."""

    OPEN = "open"
    CLOSED = "closed"
    AUTO = "auto"


# (customer id, schedule id) -> forced mode; a schedule absent from it is AUTO
ForcedModes = Mapping[tuple[str, str], ScheduleMode]
NO_FORCED: ForcedModes = MappingProxyType({})
# The digit an admin dials after the night switch code (`*55` then `2`: closed).
NIGHT_SWITCH_DIGITS: Mapping[str, ScheduleMode] = MappingProxyType(
    {"1": ScheduleMode.OPEN, "2": ScheduleMode.CLOSED, "0": ScheduleMode.AUTO})


def parse_interval(text: str) -> Interval | None:
    """"08:30-12:00" -> (510, 720); None when malformed or empty."""
    try:
        start_s, end_s = text.split("-")
        sh, sm = (int(x) for x in start_s.strip().split(":"))
        eh, em = (int(x) for x in end_s.strip().split(":"))
    except ValueError:
        return None
    start, end = sh * 60 + sm, eh * 60 + em
    if not (0 <= sh < 24 and 0 <= sm < 60 and 0 <= eh <= 24 and 0 <= em < 60):
        return None
    if end <= start or end > 24 * 60:
        return None
    return (start, end)


@dataclass(frozen=True, eq=False)
class Schedule:
    id: str
    hours: dict[int, tuple[Interval, ...]]  # weekday (0 = Monday) -> open intervals
    holiday_country: str | None = None  # e.g. "FR": public holidays are closed days
    closed_dates: frozenset[date] = frozenset()
    _holidays: holidays.HolidayBase | None = field(default=None, repr=False)

    @staticmethod
    def build(
        id: str,
        hours: dict[int, tuple[Interval, ...]],
        holiday_country: str | None,
        closed_dates: frozenset[date],
    ) -> Schedule:
        cal = holidays.country_holidays(holiday_country) if holiday_country else None
        return Schedule(id, hours, holiday_country, closed_dates, cal)

    def is_open(self, at: datetime, tz: ZoneInfo) -> tuple[bool, str]:
        """Whether open at `at`, and why (for the explain trace)."""
        local = at.replace(tzinfo=tz) if at.tzinfo is None else at.astimezone(tz)
        day = local.date()
        if day in self.closed_dates:
            return False, f"schedule {self.id}: closed on {day.isoformat()}"
        if self._holidays is not None:
            # The holidays calendar fills a year on first use; the set of holidays of a
            # year never changes, so this stays a pure function of `at`.
            name = self._holidays.get(day)
            if name is not None:
                return False, f"schedule {self.id}: public holiday {day.isoformat()} ({name})"
        minute = local.hour * 60 + local.minute
        for start, end in self.hours.get(local.weekday(), ()):
            if start <= minute < end:
                return True, f"schedule {self.id}: open {WEEKDAYS[local.weekday()]} {_hm(start)}-{_hm(end)}"
        return False, f"schedule {self.id}: closed {WEEKDAYS[local.weekday()]} {local:%H:%M}"


def schedule_open(schedule: Schedule, at: datetime, tz: ZoneInfo,
                  mode: ScheduleMode = ScheduleMode.AUTO) -> tuple[bool, str]:
    """Whether `schedule` is open at `at` once the night switch is taken into account, and
    why: a forced mode wins over the hours and holidays."""
    if mode is ScheduleMode.OPEN:
        return True, f"schedule {schedule.id}: forced open by the night switch"
    if mode is ScheduleMode.CLOSED:
        return False, f"schedule {schedule.id}: forced closed by the night switch"
    return schedule.is_open(at, tz)


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
