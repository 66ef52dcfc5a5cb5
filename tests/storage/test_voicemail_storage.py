"""Voicemail mailboxes and messages on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from switch.storage import create_engine
from switch.storage.voicemail import MailboxRecord, MessageRecord, SqlVoicemailStore


def _msg(i: int, owner: str = "501410") -> MessageRecord:
    return MessageRecord(f"m{i}", owner, "501411", "Bruno Petit", 1_800_000_000.0 + i, 3.5,
                         False, False, f"{owner}/m{i}.wav")


def test_mailboxes_messages_and_outbox(migrated_url: str) -> None:
    async def run() -> None:
        engine = create_engine(migrated_url)
        store = SqlVoicemailStore(engine)
        try:
            box = MailboxRecord("501410", "pbkdf2_sha256$1$00$00", frozenset(), "a@x.test", 1.0)
            assert await store.create_mailbox(box)
            assert not await store.create_mailbox(box)  # exists: no error, no change
            await store.set_greeting("501410", "busy", True)
            await store.set_pin("501410", "pbkdf2_sha256$2$11$11")
            got = await store.mailbox("501410")
            assert got is not None and got.greetings == {"busy"}
            assert got.pin_hash == "pbkdf2_sha256$2$11$11" and got.email == "a@x.test"
            for i in (2, 1):
                await store.add_message(_msg(i))
            await store.add_message(_msg(3, owner="502411"))
            assert [m.id for m in await store.messages("501410")] == ["m1", "m2"]
            await store.mark_heard("m1")
            await store.email_failed("m2", 1, 1_800_000_100.0, "connection refused")
            await store.email_sent("m3")
            unsent = await store.unsent()
            assert [(m.id, m.email_attempts, m.email_error) for m in unsent] == [
                ("m1", 0, None), ("m2", 1, "connection refused")]
            await store.delete_message("m2")
            boxes, msgs = await store.load()
            assert [b.owner for b in boxes] == ["501410"]
            assert [(m.id, m.heard, m.emailed) for m in msgs] == [
                ("m1", True, False), ("m3", False, True)]
            assert msgs[0].caller_name == "Bruno Petit" and msgs[0].duration == 3.5
        finally:
            await engine.dispose()

    asyncio.run(run())
