"""Voicemail storage (issue 13): mailboxes and messages.

- `voicemail_mailboxes`: one row per mailbox, keyed by the user's full internal number:
  the PIN's salted hash (voicemail.pin), which greetings are recorded (the files are
  `<data_dir>/voicemail/<owner>/greeting-<kind>.wav`), the e-mail address last seen.
- `voicemail_messages`: one row per message: caller, time, duration, urgent, heard, the
  audio file relative to `<data_dir>/voicemail/`, and the e-mail outbox state (sent or not,
  attempts, when to try next, the last error).

Durability is the adapter's rule (switch/services/voicemail.py): a message's WAV is written
and fsynced before its row is inserted; the row is what makes a message exist.

The tables are declared on the shared metadata (models.Base) so that alembic's comparison
sees them once this module is imported (migrations/env.py does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Double,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class MailboxRow(Base):
    __tablename__ = "voicemail_mailboxes"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(255))
    greeting_unavailable: Mapped[bool] = mapped_column(Boolean)
    greeting_busy: Mapped[bool] = mapped_column(Boolean)
    greeting_name: Mapped[bool] = mapped_column(Boolean)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[float] = mapped_column(Double)


class MessageRow(Base):
    __tablename__ = "voicemail_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(128))
    caller: Mapped[str] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    received_at: Mapped[float] = mapped_column(Double)
    duration: Mapped[float] = mapped_column(Double)
    urgent: Mapped[bool] = mapped_column(Boolean)
    heard: Mapped[bool] = mapped_column(Boolean)
    audio: Mapped[str] = mapped_column(String(255))  # relative to <data_dir>/voicemail
    emailed: Mapped[bool] = mapped_column(Boolean)
    email_attempts: Mapped[int] = mapped_column(Integer)
    email_next_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    email_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_voicemail_messages_mailbox", "mailbox"),)


_BOXES = cast(Table, MailboxRow.__table__)
_MSGS = cast(Table, MessageRow.__table__)
GREETING_COLUMNS = {"unavailable": "greeting_unavailable", "busy": "greeting_busy",
                    "name": "greeting_name"}


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    owner: str
    pin_hash: str
    greetings: frozenset[str]  # "unavailable", "busy", "name": recorded
    email: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    mailbox: str
    caller: str
    caller_name: str | None
    received_at: float
    duration: float
    urgent: bool
    heard: bool
    audio: str
    emailed: bool = False
    email_attempts: int = 0
    email_next_at: float | None = None
    email_error: str | None = None


def _box(r: Any) -> MailboxRecord:
    kinds = frozenset(k for k, col in GREETING_COLUMNS.items() if getattr(r, col))
    return MailboxRecord(r.owner, r.pin_hash, kinds, r.email, float(r.created_at))


def _msg(r: Any) -> MessageRecord:
    return MessageRecord(r.id, r.mailbox, r.caller, r.caller_name, float(r.received_at),
                         float(r.duration), bool(r.urgent), bool(r.heard), r.audio,
                         bool(r.emailed), int(r.email_attempts),
                         None if r.email_next_at is None else float(r.email_next_at),
                         r.email_error)


class SqlVoicemailStore:
    """The repository the voicemail service uses (each method one transaction)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def load(self) -> tuple[list[MailboxRecord], list[MessageRecord]]:
        async with self.engine.connect() as conn:
            boxes = [_box(r) for r in await conn.execute(select(_BOXES))]
            msgs = [_msg(r) for r in await conn.execute(
                select(_MSGS).order_by(_MSGS.c.received_at, _MSGS.c.id))]
        return boxes, msgs

    async def create_mailbox(self, box: MailboxRecord) -> bool:
        """Insert the mailbox; False when it exists already (another node made it)."""
        values = dict(owner=box.owner, pin_hash=box.pin_hash, email=box.email,
                      created_at=box.created_at,
                      **{col: k in box.greetings for k, col in GREETING_COLUMNS.items()})
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(_BOXES).values(**values))
        except IntegrityError:
            return False
        return True

    async def mailbox(self, owner: str) -> MailboxRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(_BOXES).where(_BOXES.c.owner == owner))).first()
        return _box(row) if row is not None else None

    async def set_pin(self, owner: str, pin_hash: str) -> None:
        await self._update_box(owner, pin_hash=pin_hash)

    async def set_greeting(self, owner: str, kind: str, recorded: bool) -> None:
        await self._update_box(owner, **{GREETING_COLUMNS[kind]: recorded})

    async def set_email(self, owner: str, email: str | None) -> None:
        await self._update_box(owner, email=email)

    async def _update_box(self, owner: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(_BOXES).where(_BOXES.c.owner == owner).values(**values))

    async def add_message(self, m: MessageRecord) -> None:
        """The commit that makes a message exist (its WAV is on disk already)."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(_MSGS).values(
                id=m.id, mailbox=m.mailbox, caller=m.caller, caller_name=m.caller_name,
                received_at=m.received_at, duration=m.duration, urgent=m.urgent,
                heard=m.heard, audio=m.audio, emailed=m.emailed,
                email_attempts=m.email_attempts, email_next_at=m.email_next_at,
                email_error=m.email_error))

    async def messages(self, owner: str) -> list[MessageRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(_MSGS).where(_MSGS.c.mailbox == owner)
                                      .order_by(_MSGS.c.received_at, _MSGS.c.id))
            return [_msg(r) for r in rows]

    async def mark_heard(self, message_id: str, heard: bool = True) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(_MSGS).where(_MSGS.c.id == message_id).values(heard=heard))

    async def delete_message(self, message_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(_MSGS).where(_MSGS.c.id == message_id))

    async def unsent(self) -> list[MessageRecord]:
        """Messages whose e-mail has not gone out (the outbox), oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(_MSGS).where(_MSGS.c.emailed.is_(False))
                                      .order_by(_MSGS.c.received_at, _MSGS.c.id))
            return [_msg(r) for r in rows]

    async def email_sent(self, message_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(_MSGS).where(_MSGS.c.id == message_id).values(
                emailed=True, email_next_at=None, email_error=None))

    async def email_failed(self, message_id: str, attempts: int, next_at: float,
                           error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(_MSGS).where(_MSGS.c.id == message_id).values(
                email_attempts=attempts, email_next_at=next_at, email_error=error[:500]))
