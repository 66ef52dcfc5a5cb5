"""The voicemail service (issue 13): the adapter of the pure `voicemail` applications.

- It builds the applications the call manager's table runs (`applications()`: deposit
  with the busy or unavailable greeting, and the mailbox menu), each with a snapshot of its
  mailbox from an in-memory cache loaded at start, and performs the store commands they
  emit (`voicemail.store.MailboxActions`), in order per mailbox.
- Durability of a deposit: the recording (written atomically by the media recorder) is
  copied into `<data_dir>/voicemail/<owner>/<id>.wav` with fsync of the file and its
  directory (media.audio.atomic_write) *before* the row is committed; only then does the
  message exist (counts, lamp, e-mail). The call service awaits `settle(call_id)` before it
  answers the caller's BYE, so a message whose caller got the 200 OK survives a kill -9.
- A mailbox is created on first use with the demo PIN (the last four digits of the user's
  internal number), stored as a salted hash.
- Wrong PINs count in the switch's failure guard (devices/guard.py) under the account key
  `voicemail:<owner>` and the caller's address; a blocked caller is told so at once.
- `counts(owner) -> (new, old)` from the cache, and `MessageWaiting.message_waiting_changed`
  whenever they change (the SUBSCRIBE/NOTIFY service plugs in there).
- The e-mail outbox: a background task sends every message not e-mailed yet to the user's
  `email` through `voicemail.smtp`, retrying with exponential backoff; a message is never
  lost because SMTP is down (it is in the mailbox already; only the e-mail waits).

Limits: the cache is this node's; another switch process sharing the database sees new
messages after its restart (the rows are there). Mailboxes are keyed by full internal
number, as the message-waiting interface is: two customers with the same full numbers
would share mailboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from devices.guard import AuthFailureGuard
from dialplan import PlanHolder, User
from ivr.application import CallApplication, CallInfo
from media.audio import atomic_write
from switch.b2bua.decisions import (
    VOICEMAIL_BUSY,
    VOICEMAIL_DEPOSIT,
    VOICEMAIL_RETRIEVE,
    VOICEMAIL_UNAVAILABLE,
    AppContext,
    ApplicationFactory,
    InContext,
)
from switch.settings import VoicemailSettings
from switch.storage.voicemail import MailboxRecord, MessageRecord, SqlVoicemailStore
from voicemail import DepositApp, Greeting, MailboxMenu, MailboxSnapshot, StoredMessage
from voicemail.pin import demo_pin, hash_pin

from .voicemail_mail import MailError, compose, send

log = logging.getLogger("switch.voicemail")

SETTLE_TIMEOUT = 10.0


class MessageWaiting(Protocol):
    """Told whenever a mailbox's new/old counts change (RFC 3842 NOTIFY comes from it)."""

    def message_waiting_changed(self, user_full_number: str) -> None: ...


class NoMessageWaiting:
    def message_waiting_changed(self, user_full_number: str) -> None:
        return None


@dataclass
class _Mailbox:
    record: MailboxRecord
    messages: dict[str, MessageRecord] = field(default_factory=dict)  # in received order

    def counts(self) -> tuple[int, int]:
        new = sum(1 for m in self.messages.values() if not m.heard)
        return new, len(self.messages) - new


def mailbox_key(user: User) -> str:
    """A mailbox's identity: customer and full internal number (`customer:number`, as the
    location service and the subscriptions key users), since full numbers repeat across
    customers and a mailbox must never be shared between them."""
    return f"{user.customer.id}:{user.full_number}"


class VoicemailService:
    def __init__(self, store: SqlVoicemailStore, data_dir: Path, plan: PlanHolder, *,
                 settings: VoicemailSettings | None = None,
                 guard: Callable[[], AuthFailureGuard | None] = lambda: None,
                 message_waiting: MessageWaiting | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.root = data_dir / "voicemail"
        self.plan = plan
        self.settings = settings or VoicemailSettings()
        self.guard = guard
        self.message_waiting: MessageWaiting = message_waiting or NoMessageWaiting()
        self.clock = wall_clock
        self.boxes: dict[str, _Mailbox] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, set[asyncio.Future[None]]] = {}  # call-id -> work
        self._tasks: set[asyncio.Future[None]] = set()
        self._outbox: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.emails_sent = 0

    # -- lifecycle --

    async def start(self) -> None:
        await self.reload()
        if self.settings.smtp is not None:
            self._outbox = asyncio.create_task(self._run_outbox())

    async def reload(self) -> None:
        """Read the mailboxes and messages (at start, and when a peer node changed one,
        issue 22)."""
        boxes, messages = await self.store.load()
        fresh = {b.owner: _Mailbox(b) for b in boxes}
        for m in messages:
            box = fresh.get(m.mailbox)
            if box is not None:
                box.messages[m.id] = m
        self.boxes = fresh
        log.info("voicemail: %d mailboxes, %d messages", len(self.boxes), len(messages))

    async def stop(self) -> None:
        self._stopping = True  # a cancel racing a wake-up may be swallowed by wait_for
        self._wake.set()
        if self._outbox is not None:
            self._outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._outbox, SETTLE_TIMEOUT)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SETTLE_TIMEOUT)

    # -- what others read --

    def counts(self, user_full_number: str) -> tuple[int, int]:
        """(new, old) messages of the mailbox (0, 0 when it has none)."""
        box = self.boxes.get(user_full_number)
        return box.counts() if box is not None else (0, 0)

    def messages(self, owner: str) -> list[MessageRecord]:
        box = self.boxes.get(owner)
        return list(box.messages.values()) if box is not None else []

    def audio_file(self, owner: str, message_id: str) -> Path | None:
        """The WAV of `owner`'s message, None when `owner` has no such message."""
        box = self.boxes.get(owner)
        m = box.messages.get(message_id) if box is not None else None
        return self.root / m.audio if m is not None else None

    def applications(self) -> dict[str, ApplicationFactory]:
        """The rows of the call manager's table (`switch.b2bua.decisions`) voicemail fills."""
        return {
            VOICEMAIL_DEPOSIT: InContext(lambda i, c: self.deposit(i, c, busy=False)),
            VOICEMAIL_UNAVAILABLE: InContext(lambda i, c: self.deposit(i, c, busy=False)),
            VOICEMAIL_BUSY: InContext(lambda i, c: self.deposit(i, c, busy=True)),
            VOICEMAIL_RETRIEVE: InContext(self.retrieve),
        }

    async def settle(self, call_id: str) -> None:
        """Wait for the store commands a call's application emitted (the BYE's 200 OK
        waits for this: a message is committed before its caller is told the call ended)."""
        pending = self._pending.pop(call_id, set())
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_TIMEOUT)

    # -- application factories --

    def deposit(self, info: CallInfo, ctx: AppContext, *, busy: bool) -> CallApplication:
        owner = self._owner(ctx)
        caller_name = ctx.caller.name if ctx.caller is not None else None
        return DepositApp(info, self.snapshot(owner, ctx.source), _CallActions(self, info,
                          ctx.source), busy=busy, caller_name=caller_name,
                          max_seconds=self.settings.max_message_seconds)

    def retrieve(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        owner = self._owner(ctx)
        return MailboxMenu(info, self.snapshot(owner, ctx.source),
                           _CallActions(self, info, ctx.source))

    @staticmethod
    def _owner(ctx: AppContext) -> User:
        user = ctx.decision.target
        if not isinstance(user, User):
            raise ValueError(f"a mailbox belongs to a user, not {user!r}")
        return user

    def snapshot(self, user: User, source: str) -> MailboxSnapshot:
        box = self._mailbox(user)
        key = mailbox_key(user)
        tz = user.site.timezone
        messages = tuple(StoredMessage(
            m.id, m.caller, m.received_at,
            datetime.fromtimestamp(m.received_at, tz).replace(tzinfo=None), m.duration,
            m.urgent, m.heard, str(self.root / m.audio), m.caller_name)
            for m in box.messages.values())
        greetings = {Greeting(k): str(self._greeting_path(key, k))
                     for k in box.record.greetings}
        guard = self.guard()
        locked = guard is not None and guard.check(
            source, self.clock(), account=guard_key(key)).blocked
        return MailboxSnapshot(key, box.record.pin_hash, greetings, messages, locked)

    def _mailbox(self, user: User) -> _Mailbox:
        """The user's mailbox, created on first use with the demo PIN."""
        key = mailbox_key(user)
        box = self.boxes.get(key)
        if box is not None:
            return box
        record = MailboxRecord(key, hash_pin(demo_pin(user.full_number)),
                               frozenset(), user.email, self.clock())
        box = self.boxes[key] = _Mailbox(record)
        log.info("voicemail: mailbox %s created (PIN: the last four digits of the number)",
                 key)
        self._spawn(None, key, self._create(record))
        return box

    async def _create(self, record: MailboxRecord) -> None:
        if not await self.store.create_mailbox(record):
            stored = await self.store.mailbox(record.owner)  # another node made it first
            if stored is not None and record.owner in self.boxes:
                self.boxes[record.owner].record = stored

    # -- store commands (performed in order per mailbox) --

    def _spawn(self, call_id: str | None, owner: str,
               coro: Coroutine[Any, Any, None], *, reraise: bool = False) -> asyncio.Future[None]:
        """Queue a store change behind the mailbox's earlier ones. A task, not a bare
        `async with lock`: a free lock would let the caller overtake changes queued but
        not yet started (the mailbox's own INSERT). `reraise` hands the failure to a
        caller that awaits the result (the REST API answers it)."""
        lock = self._locks.setdefault(owner, asyncio.Lock())

        async def in_order() -> None:
            async with lock:
                try:
                    await coro
                except Exception:
                    log.exception("voicemail: a change to mailbox %s failed", owner)
                    if reraise:
                        raise

        task = asyncio.ensure_future(in_order())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if call_id is not None:
            self._pending.setdefault(call_id, set()).add(task)
            task.add_done_callback(lambda t: self._done(call_id, t))
        return task

    def _done(self, call_id: str, task: asyncio.Future[None]) -> None:
        pending = self._pending.get(call_id)
        if pending is not None:
            pending.discard(task)
            if not pending:
                del self._pending[call_id]

    def _changed(self, owner: str) -> None:
        try:
            self.message_waiting.message_waiting_changed(owner)
        except Exception:
            log.exception("voicemail: message-waiting notification for %s failed", owner)

    async def save_message(self, owner: str, recording: Path, *, caller: str,
                           caller_name: str | None, seconds: float, urgent: bool) -> str:
        """The WAV copied and fsynced into the mailbox, then the row committed: from then
        on the message exists (counts, lamp, e-mail)."""
        message_id = secrets.token_hex(8)
        audio = f"{owner}/{message_id}.wav"
        await asyncio.to_thread(_move, recording, self.root / audio)
        record = MessageRecord(message_id, owner, caller, caller_name, self.clock(), seconds,
                               urgent, False, audio)
        await self.store.add_message(record)
        box = self.boxes.get(owner)
        if box is not None:
            box.messages[message_id] = record
        log.info("voicemail: message %s stored in mailbox %s from %s (%.1f s)", message_id,
                 owner, caller, seconds)
        self._changed(owner)
        self._wake.set()
        return message_id

    async def mark_heard(self, owner: str, message_id: str) -> bool:
        box = self.boxes.get(owner)
        m = box.messages.get(message_id) if box is not None else None
        if box is None or m is None:
            return False
        if not m.heard:
            box.messages[message_id] = _replace(m, heard=True)
            await self.store.mark_heard(message_id)
            self._changed(owner)  # after the commit: peers reload what it changed (issue 22)
        return True

    async def delete_message(self, owner: str, message_id: str) -> bool:
        box = self.boxes.get(owner)
        m = box.messages.pop(message_id, None) if box is not None else None
        if m is None:
            return False
        await self.store.delete_message(message_id)  # the row first: then the file
        self._changed(owner)  # after the commit: peers reload what it changed (issue 22)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread((self.root / m.audio).unlink)
        log.info("voicemail: message %s of mailbox %s deleted", message_id, owner)
        return True

    async def set_greeting(self, owner: str, kind: Greeting, recording: Path) -> None:
        await asyncio.to_thread(_move, recording, self._greeting_path(owner, kind.value))
        await self.store.set_greeting(owner, kind.value, True)
        box = self.boxes.get(owner)
        if box is not None:
            box.record = _replace_box(box.record, greetings=box.record.greetings | {kind.value})

    async def change_pin(self, user: User, pin: str) -> None:
        """The PIN changed from outside a call (the portal): the mailbox created first
        when new, and the UPDATE queued after its INSERT, never racing it (an UPDATE
        that reached the store first matched no row and the demo PIN stayed stored)."""
        owner = mailbox_key(user)
        self._mailbox(user)
        await self._spawn(None, owner, self.set_pin(owner, pin), reraise=True)

    async def change_greeting(self, user: User, kind: Greeting, recording: Path) -> None:
        """As `change_pin`, for a greeting uploaded through the portal."""
        owner = mailbox_key(user)
        self._mailbox(user)
        await self._spawn(None, owner, self.set_greeting(owner, kind, recording),
                          reraise=True)

    async def set_pin(self, owner: str, pin: str) -> None:
        pin_hash = await asyncio.to_thread(hash_pin, pin)
        await self.store.set_pin(owner, pin_hash)
        box = self.boxes.get(owner)
        if box is not None:
            box.record = _replace_box(box.record, pin_hash=pin_hash)

    def _greeting_path(self, owner: str, kind: str) -> Path:
        return self.root / owner / f"greeting-{kind}.wav"

    # -- the e-mail outbox --

    async def _run_outbox(self) -> None:
        while not self._stopping:
            try:
                wait = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("voicemail: outbox round failed")
                wait = 30.0
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def send_due(self) -> float:
        """Send every message whose e-mail is due; the seconds until the next one is."""
        smtp = self.settings.smtp
        if smtp is None:
            return 3600.0
        now = self.clock()
        next_in = 3600.0
        for m in await self.store.unsent():
            if m.email_next_at is not None and m.email_next_at > now:
                next_in = min(next_in, m.email_next_at - now)
                continue
            user = self._user(m.mailbox)
            if user is None or not user.email:
                await self.store.email_sent(m.id)  # nobody to e-mail: nothing to wait for
                continue
            try:
                message = await asyncio.to_thread(
                    compose, to=user.email, sender=smtp.from_address, owner=m.mailbox,
                    caller=m.caller, caller_name=m.caller_name,
                    received_local=datetime.fromtimestamp(m.received_at, user.site.timezone),
                    duration=m.duration, urgent=m.urgent, audio=self.root / m.audio,
                    message_id=m.id)
                await asyncio.to_thread(send, smtp, message)
            except (MailError, OSError) as exc:
                attempts = m.email_attempts + 1
                delay = min(smtp.retry_max, smtp.retry_initial * 2 ** (attempts - 1))
                await self.store.email_failed(m.id, attempts, now + delay, str(exc))
                log.warning("voicemail: e-mail of message %s to %s failed (attempt %d, next in "
                            "%.0f s): %s", m.id, user.email, attempts, delay, exc)
                next_in = min(next_in, delay)
                continue
            await self.store.email_sent(m.id)
            self.emails_sent += 1
            log.info("voicemail: message %s e-mailed to %s", m.id, user.email)
        return max(0.05, next_in)

    def _user(self, owner: str) -> User | None:
        """The user of mailbox `owner` (`customer:number`, see `mailbox_key`)."""
        customer_id, _, number = owner.rpartition(":")
        for customer in self.plan.plan.customers:
            if customer.id != customer_id:
                continue
            entity = customer.by_full_number.get(number)
            if isinstance(entity, User):
                return entity
        return None


def guard_key(owner: str) -> str:
    """The failure guard's account key for a mailbox's PIN."""
    return f"voicemail:{owner}"


def _move(src: Path, dst: Path) -> None:
    """Copy `src` into `dst` durably (fsync of the file and its directory), then remove
    `src`: a crash leaves the source, the complete destination, or both; never half."""
    atomic_write(dst, src.read_bytes())
    with contextlib.suppress(FileNotFoundError):
        os.unlink(src)


def _replace(m: MessageRecord, **changes: Any) -> MessageRecord:
    import dataclasses

    return dataclasses.replace(m, **changes)


def _replace_box(b: MailboxRecord, **changes: Any) -> MailboxRecord:
    import dataclasses

    return dataclasses.replace(b, **changes)


class _CallActions:
    """`voicemail.store.MailboxActions` for one call: each command becomes a task of the
    service (ordered per mailbox) that the call's BYE waits for (`settle`)."""

    def __init__(self, service: VoicemailService, info: CallInfo, source: str) -> None:
        self.service = service
        self.call_id = info.call_id
        self.source = source

    def save_message(self, owner: str, recording: str, *, caller: str,
                     caller_name: str | None, seconds: float, urgent: bool) -> None:
        async def save() -> None:
            await self.service.save_message(owner, Path(recording), caller=caller,
                                            caller_name=caller_name, seconds=seconds,
                                            urgent=urgent)
        self.service._spawn(self.call_id, owner, save())

    def discard(self, recording: str) -> None:
        async def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, recording)
        self.service._spawn(self.call_id, "", remove())

    def mark_heard(self, owner: str, message_id: str) -> None:
        async def heard() -> None:
            await self.service.mark_heard(owner, message_id)
        self.service._spawn(self.call_id, owner, heard())

    def delete_message(self, owner: str, message_id: str) -> None:
        async def delete() -> None:
            await self.service.delete_message(owner, message_id)
        self.service._spawn(self.call_id, owner, delete())

    def set_greeting(self, owner: str, kind: Greeting, recording: str) -> None:
        self.service._spawn(self.call_id, owner,
                            self.service.set_greeting(owner, kind, Path(recording)))

    def set_pin(self, owner: str, pin: str) -> None:
        self.service._spawn(self.call_id, owner, self.service.set_pin(owner, pin))

    def pin_failed(self, owner: str) -> None:
        guard = self.service.guard()
        if guard is not None:
            guard.record_failure(self.source, self.service.clock(), account=guard_key(owner))
