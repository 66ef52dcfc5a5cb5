"""Per-user call settings (issue 15) and the per-user call log, in the database.

`user_settings`: one row per user (customer id, full internal number) holding its
forwarding, do-not-disturb, privacy, call-waiting and personal-ringing settings, and
`missed_read_at`, when the user last read its missed calls.

The call log is not a second table: it is read from `call_records`, which already holds
every attempt (refused ones too) with caller, callee and disposition, written once on the
hot path. A second log table would write every call twice and could disagree with the
records; the log needs only `missed_read_at` per user for its missed counter.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import Boolean, Double, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from dialplan.user_settings import SequentialStep, UserSettings
from switch.storage.engine import upsert_insert

from .engine import create_engine
from .models import Base, CallRecordRow


class UserSettingsRow(Base):
    __tablename__ = "user_settings"

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), primary_key=True)  # full internal number
    forward_always: Mapped[str | None] = mapped_column(String(64), nullable=True)
    forward_busy: Mapped[str | None] = mapped_column(String(64), nullable=True)
    forward_no_answer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    forward_no_answer_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    forward_unreachable: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dnd: Mapped[bool] = mapped_column(Boolean)
    clir: Mapped[bool] = mapped_column(Boolean)
    reject_anonymous: Mapped[bool] = mapped_column(Boolean)
    call_waiting: Mapped[bool] = mapped_column(Boolean)
    simultaneous: Mapped[str] = mapped_column(Text)  # JSON list of numbers
    sequential: Mapped[str] = mapped_column(Text)  # JSON list of [number, seconds]
    missed_read_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_at: Mapped[float] = mapped_column(Double)


_SCALARS = ("forward_always", "forward_busy", "forward_no_answer", "forward_no_answer_seconds",
            "forward_unreachable", "dnd", "clir", "reject_anonymous", "call_waiting")


def _to_settings(row: Any) -> UserSettings:
    seq = tuple(SequentialStep(str(n), float(s)) for n, s in json.loads(row.sequential or "[]"))
    return UserSettings(**{name: getattr(row, name) for name in _SCALARS},
                        simultaneous=tuple(json.loads(row.simultaneous or "[]")),
                        sequential=seq)


def _to_values(settings: UserSettings) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(settings, name) for name in _SCALARS}
    values["simultaneous"] = json.dumps(list(settings.simultaneous))
    values["sequential"] = json.dumps([[s.number, s.seconds] for s in settings.sequential])
    return values



class Direction:
    PLACED = "placed"
    RECEIVED = "received"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class CallLogEntry:
    direction: str  # placed, received or missed
    other: str | None  # the other party's number
    start: float
    seconds: float
    disposition: str | None


@dataclass(frozen=True, slots=True)
class CallLog:
    entries: tuple[CallLogEntry, ...]
    missed_unread: int  # missed calls since the user last read the log


# an unanswered call to the user, whatever ended it (caller gave up, no answer, busy, or
# refused by the user's own settings: do not disturb, anonymous rejection)
_MISSED_DISPOSITIONS = ("no_answer", "cancelled", "busy", "unreachable", "failed", "rejected",
                        "refused")


class SqlUserSettings:
    """The `user_settings` table and the call log read from `call_records`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def load_all(self) -> dict[tuple[str, str], UserSettings]:
        """Every stored user's settings, by (customer, full number)."""
        async with self._sessions() as s:
            rows = (await s.execute(select(UserSettingsRow))).scalars().all()
        return {(r.customer, r.number): _to_settings(r) for r in rows}

    async def save(self, customer: str, number: str, settings: UserSettings,
                   now: float) -> None:
        """Insert or replace a user's settings (committed when this returns)."""
        values = _to_values(settings)
        ins = upsert_insert(self._engine, UserSettingsRow).values(
            customer=customer, number=number, updated_at=now, missed_read_at=None, **values)
        stmt = ins.on_conflict_do_update(
            index_elements=[UserSettingsRow.customer, UserSettingsRow.number],
            set_={**values, "updated_at": now})
        async with self._sessions() as s, s.begin():
            await s.execute(stmt)

    async def call_log(self, customer: str, number: str, *, limit: int = 50,
                       mark_read: float | None = None) -> CallLog:
        """The user's calls, newest first: placed (it called), received (answered) and
        missed (unanswered calls to it). `mark_read` (now): the missed counter resets."""
        r = CallRecordRow
        q = (select(r.caller, r.callee, r.start, r.answer, r.end, r.disposition, r.customer)
             .where(or_(r.caller == number, r.callee == number), r.end.is_not(None))
             .order_by(r.start.desc()).limit(limit))
        async with self._sessions() as s:
            rows = (await s.execute(q)).all()
            read_at = (await s.execute(select(UserSettingsRow.missed_read_at).where(
                UserSettingsRow.customer == customer,
                UserSettingsRow.number == number))).scalar_one_or_none()
        entries: list[CallLogEntry] = []
        unread = 0
        for row in rows:
            seconds = (row.end - row.answer) if row.answer is not None else 0.0
            if row.caller == number and row.customer in (customer, None):
                entries.append(CallLogEntry(Direction.PLACED, row.callee, row.start, seconds,
                                            row.disposition))
            elif row.answer is not None:
                entries.append(CallLogEntry(Direction.RECEIVED, row.caller, row.start,
                                            seconds, row.disposition))
            elif row.disposition in _MISSED_DISPOSITIONS:
                entries.append(CallLogEntry(Direction.MISSED, row.caller, row.start, 0.0,
                                            row.disposition))
                if read_at is None or row.start > read_at:
                    unread += 1
        if mark_read is not None:
            await self._mark_read(customer, number, mark_read)
        return CallLog(tuple(entries), unread)

    async def _mark_read(self, customer: str, number: str, now: float) -> None:
        values = _to_values(UserSettings())
        ins = upsert_insert(self._engine, UserSettingsRow).values(
            customer=customer, number=number, updated_at=now, missed_read_at=now, **values)
        stmt = ins.on_conflict_do_update(
            index_elements=[UserSettingsRow.customer, UserSettingsRow.number],
            set_={"missed_read_at": now})
        async with self._sessions() as s, s.begin():
            await s.execute(stmt)



async def print_call_log(url: str, customer: str, number: str, out: TextIO, *,
                         mark_read: bool, limit: int = 50) -> int:
    """`wte calllog NUMBER`: the user's call log as JSON lines (newest first) after a line
    with the unread missed count; `--mark-read` resets that count."""
    engine = create_engine(url)
    try:
        log_ = await SqlUserSettings(engine).call_log(
            customer, number, limit=limit, mark_read=time.time() if mark_read else None)
    finally:
        await engine.dispose()
    out.write(json.dumps({"user": number, "missed_unread": log_.missed_unread}) + "\n")
    for entry in log_.entries:
        out.write(json.dumps(dataclasses.asdict(entry), sort_keys=True) + "\n")
    return 0
