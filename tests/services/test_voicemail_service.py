"""The voicemail service on a real database, a real data directory and a real SMTP server
(aiosmtpd): deposits are durable, counts and the lamp follow, e-mails go out with the WAV
attached, and a message is never lost while SMTP is down."""

from __future__ import annotations

import asyncio
import email
import socket
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from dialplan import PlanHolder, load_plan
from media.audio import write_wav
from switch.services.applications import tone_pcm
from switch.services.voicemail import VoicemailService
from switch.settings import SmtpSettings, VoicemailSettings
from switch.storage import create_engine, db_upgrade
from switch.storage.voicemail import SqlVoicemailStore
from voicemail.pin import verify_pin

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


class Lamp:
    def __init__(self) -> None:
        self.changed: list[str] = []

    def message_waiting_changed(self, user_full_number: str) -> None:
        self.changed.append(user_full_number)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def make(tmp_path: Path, port: int, clock: Clock) -> tuple[VoicemailService, Lamp]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'wte.db'}"
    db_upgrade(url)
    smtp = SmtpSettings(host="127.0.0.1", port=port, from_address="vm@acme.example",
                        timeout=3, retry_initial=60, retry_max=600)
    lamp = Lamp()
    service = VoicemailService(SqlVoicemailStore(create_engine(url)), tmp_path,
                               PlanHolder(load_plan(EXAMPLE)),
                               settings=VoicemailSettings(smtp=smtp), message_waiting=lamp,
                               wall_clock=clock)
    return service, lamp


def recording(tmp_path: Path, name: str = "take.wav") -> Path:
    path = tmp_path / "recordings" / name
    write_wav(path, tone_pcm(440.0, 2.0))
    return path


def alice(service: VoicemailService) -> Any:
    return service.plan.plan.customers[0].by_full_number["501410"]


async def test_deposit_durable_then_emailed_with_the_wav(tmp_path: Path) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    clock = Clock()
    service, lamp = await make(tmp_path, port, clock)
    try:
        await service.start()
        snap = service.snapshot(alice(service), "127.0.0.1")  # created on first use
        assert verify_pin("1410", snap.pin_hash) and snap.messages == ()
        await asyncio.sleep(0.1)  # the mailbox row is written in the background
        src = recording(tmp_path)
        mid = await service.save_message("acme:501410", src, caller="501411",
                                         caller_name="Bruno Petit", seconds=2.0, urgent=True)
        wav = tmp_path / "voicemail" / "acme:501410" / f"{mid}.wav"
        assert wav.is_file() and not src.exists()
        assert service.counts("acme:501410") == (1, 0) and lamp.changed == ["acme:501410"]
        rows = await service.store.messages("acme:501410")
        assert [(r.id, r.caller, r.urgent) for r in rows] == [(mid, "501411", True)]
        for _ in range(100):
            if inbox.messages:
                break
            await asyncio.sleep(0.05)
        assert len(inbox.messages) == 1
        mail = inbox.messages[0]
        assert mail["To"] == "alice.martin@acme.example"
        assert "Bruno Petit" in str(mail["Subject"]) and "URGENT" in str(mail["Subject"])
        parts = [p for p in mail.walk() if p.get_content_type() == "audio/wav"]
        assert len(parts) == 1
        payload = parts[0].get_payload(decode=True)
        assert isinstance(payload, bytes) and payload == wav.read_bytes()
        assert (await service.store.unsent()) == []
        # heard, then deleted: the lamp follows each change
        assert await service.mark_heard("acme:501410", mid)
        assert service.counts("acme:501410") == (0, 1)
        assert not await service.delete_message("acme:501411", mid)  # not that mailbox's
        assert await service.delete_message("acme:501410", mid)
        assert service.counts("acme:501410") == (0, 0) and not wav.exists()
        assert lamp.changed == ["acme:501410"] * 3
    finally:
        await service.stop()
        await service.store.engine.dispose()
        controller.stop()


async def test_smtp_down_the_message_stays_and_the_email_goes_out_later(
        tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: SMTP is down
    clock = Clock()
    service, _ = await make(tmp_path, port, clock)
    await service.start()
    try:
        service.snapshot(alice(service), "127.0.0.1")
        await asyncio.sleep(0.1)
        mid = await service.save_message("acme:501410", recording(tmp_path), caller="+33612345678",
                                         caller_name=None, seconds=2.0, urgent=False)
        wait = await service.send_due()
        unsent = await service.store.unsent()
        assert [(m.id, m.email_attempts) for m in unsent] == [(mid, 1)]
        assert unsent[0].email_error and 50 < wait <= 60
        assert service.counts("acme:501410") == (1, 0)  # the message itself is there
        # not due yet: nothing tried
        clock.now += 30
        await service.send_due()
        assert (await service.store.unsent())[0].email_attempts == 1
        # still down when due: the next wait doubles
        clock.now += 31
        wait = await service.send_due()
        assert (await service.store.unsent())[0].email_attempts == 2 and 110 < wait <= 120
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            clock.now += 121
            await service.send_due()
            assert len(inbox.messages) == 1 and (await service.store.unsent()) == []
            assert "+33612345678" in str(inbox.messages[0]["Subject"])
        finally:
            controller.stop()
    finally:
        await service.stop()
        await service.store.engine.dispose()


async def test_a_restart_reloads_mailboxes_and_counts(tmp_path: Path) -> None:
    clock = Clock()
    service, _ = await make(tmp_path, free_port(), clock)
    await service.start()
    service.snapshot(alice(service), "127.0.0.1")
    await asyncio.sleep(0.1)
    await service.save_message("acme:501410", recording(tmp_path), caller="501411",
                               caller_name=None, seconds=2.0, urgent=False)
    await service.stop()
    await service.store.engine.dispose()
    again, _ = await make(tmp_path, free_port(), clock)
    await again.start()
    try:
        assert again.counts("acme:501410") == (1, 0)
        snap = again.snapshot(alice(again), "127.0.0.1")
        assert len(snap.messages) == 1 and Path(snap.messages[0].audio_path).is_file()
        assert snap.messages[0].received_local.hour == 9  # 07:00 UTC is 09:00 in Paris
    finally:
        await again.stop()
        await again.store.engine.dispose()


async def test_a_portal_change_to_a_new_mailbox_is_stored_after_its_creation(
        tmp_path: Path) -> None:
    """The portal's first change to a mailbox that does not exist yet: the mailbox row is
    inserted in the background, and the change must queue behind that INSERT (an UPDATE
    that overtook it matched no row, and the demo PIN came back after a restart)."""
    from voicemail import Greeting

    clock = Clock()
    service, _ = await make(tmp_path, free_port(), clock)
    await service.start()
    try:
        await service.change_pin(alice(service), "2468")
        await service.change_greeting(alice(service), Greeting("busy"),
                                      recording(tmp_path, "busy.wav"))
        stored = await service.store.mailbox("acme:501410")
        assert stored is not None and verify_pin("2468", stored.pin_hash)
        assert stored.greetings == {"busy"}
    finally:
        await service.stop()
        await service.store.engine.dispose()
    again, _ = await make(tmp_path, free_port(), clock)
    await again.start()
    try:
        snap = again.snapshot(alice(again), "127.0.0.1")
        assert verify_pin("2468", snap.pin_hash)
        assert Path(snap.greetings[Greeting("busy")]).is_file()
    finally:
        await again.stop()
        await again.store.engine.dispose()


@pytest.mark.parametrize("owner", ["acme:501410"])
async def test_the_applications_fill_the_voicemail_rows(tmp_path: Path, owner: str) -> None:
    from dialplan import DecisionKind, RoutingDecision
    from ivr.application import CallInfo
    from switch.b2bua.decisions import VOICEMAIL_BUSY, AppContext, InContext, handling_for
    from voicemail import DepositApp, MailboxMenu

    service, _ = await make(tmp_path, free_port(), Clock())
    await service.start()
    try:
        apps = service.applications()
        user = alice(service)
        info = CallInfo("c1", "501411", "sip:501410@x", "tok")
        ctx = AppContext(RoutingDecision(DecisionKind.USER, target=user), None, "127.0.0.1")
        busy = apps[VOICEMAIL_BUSY]
        assert isinstance(busy, InContext)
        app = busy.make(info, ctx)
        assert isinstance(app, DepositApp) and app.busy
        retrieve = handling_for(RoutingDecision(DecisionKind.VOICEMAIL, target=user,
                                                feature="retrieve"), apps)
        assert retrieve.name == "voicemail_retrieve"  # type: ignore[union-attr]
        factory = retrieve.factory  # type: ignore[union-attr]
        assert isinstance(factory, InContext)
        assert isinstance(factory.make(info, ctx), MailboxMenu)
    finally:
        await service.stop()
        await service.store.engine.dispose()


async def test_wrong_pins_count_in_the_failure_guard_and_lock_the_mailbox(
        tmp_path: Path) -> None:
    from devices.guard import AuthFailureGuard
    from ivr.application import CallInfo
    from switch.services.voicemail import _CallActions, guard_key

    clock = Clock()
    service, _ = await make(tmp_path, free_port(), clock)
    guard = AuthFailureGuard(max_failures=3, slow_after=2, window=600, block_seconds=300)
    service.guard = lambda: guard
    await service.start()
    try:
        user = alice(service)
        assert not service.snapshot(user, "192.0.2.7").locked
        actions = _CallActions(service, CallInfo("c1", "x", "y", "t"), "192.0.2.7")
        for _ in range(3):
            actions.pin_failed("acme:501410")
        assert guard.failures == 3
        assert guard.check("192.0.2.7", clock(), account=guard_key("acme:501410")).blocked
        assert service.snapshot(user, "192.0.2.7").locked
        # the block is per source and per mailbox key: another mailbox is not locked for
        # another caller
        assert not service.snapshot(service.plan.plan.customers[0].by_full_number["501412"],
                                    "198.51.100.1").locked
        await service.settle("c1")
        assert "c1" not in service._pending
    finally:
        await service.stop()
        await service.store.engine.dispose()


def test_a_recording_prompt_is_read_from_its_file_each_time(tmp_path: Path) -> None:
    from ivr.application import Recording
    from switch.services.applications import PromptLibrary

    path = tmp_path / "message.wav"
    write_wav(path, tone_pcm(440.0, 0.5))
    library = PromptLibrary(None)
    first = library.pcm(Recording(str(path)))
    assert len(first) == 4000
    write_wav(path, tone_pcm(440.0, 0.25))  # re-recorded: the new one plays
    assert len(library.pcm(Recording(str(path)))) == 2000


def test_two_customers_with_the_same_number_have_two_mailboxes(tmp_path: Path) -> None:
    """Full numbers repeat across customers: a mailbox is keyed by customer and number, so
    globex's 501410 never reads (or lights the lamp of) acme's 501410's messages."""
    from dialplan import User, load_plan
    from switch.services.voicemail import mailbox_key
    from tests.system.test_subscriptions import two_customer_config

    plan = load_plan(two_customer_config(tmp_path))
    users = [c.by_full_number["501410"] for c in plan.customers]
    assert all(isinstance(u, User) for u in users) and len(users) == 2
    keys = {mailbox_key(u) for u in users if isinstance(u, User)}
    assert keys == {"acme:501410", "globex:501410"}
