"""SqlBindingRepository on SQLite and PostgreSQL: round trip, group commit, durability."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from storage_helpers import NOW, binding, down, up

from devices.accounts import make_account
from devices.location import LocationService
from devices.registrar import Registrar, Source
from switch.sip import parse_message
from switch.storage import SqlBindingRepository, create_engine


async def test_round_trip_upsert_delete(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine)
    try:
        a = binding(1, path=("<sip:edge1;lr>", "<sip:edge2;lr>"), conn_id=9)
        b = binding(2, instance="<urn:uuid:abc>")
        c = binding(3, aor="acme:501411")
        await repo.apply([up(a), up(b), up(c)])
        assert sorted(await repo.load_unexpired(NOW), key=lambda x: x.contact) == [a, b, c]
        a2 = replace(a, expires_at=NOW + 7200, cseq=99)
        b2 = replace(b, contact="sip:moved@10.9.9.9")  # same instance: same row
        await repo.apply([up(a2), up(b2), down(c)])
        got = sorted(await repo.load_unexpired(NOW), key=lambda x: x.contact)
        assert got == [a2, b2]
    finally:
        await repo.close()
        await engine.dispose()


async def test_changes_to_one_binding_coalesce_in_order(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine)
    try:
        a = binding(1)
        await asyncio.gather(repo.apply([up(a)]), repo.apply([down(a)]),
                             repo.apply([up(binding(2)), down(binding(2))]))
        assert await repo.load_unexpired(NOW) == []
        await asyncio.gather(repo.apply([down(a)]), repo.apply([up(a)]))
        assert await repo.load_unexpired(NOW) == [a]
    finally:
        await repo.close()
        await engine.dispose()


async def test_expired_are_not_loaded_and_are_deleted(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine)
    try:
        await repo.apply([up(binding(i, expires_at=NOW + (10 if i % 2 else 100))) for i in range(10)])
        assert len(await repo.load_unexpired(NOW + 50)) == 5
        assert await repo.delete_expired(NOW + 50) == 5
        assert await repo.delete_expired(NOW + 50) == 0
        assert len(await repo.load_unexpired(NOW)) == 5
    finally:
        await repo.close()
        await engine.dispose()


async def test_group_commit_batches_concurrent_writers(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine)
    n = 300
    try:
        await asyncio.gather(*(repo.apply([up(binding(i, aor=f"acme:{i}"))]) for i in range(n)))
        assert repo.batched_requests == n
        assert repo.commits < n / 10, repo.commits  # typically 2: the first alone, then the rest
    finally:
        await repo.close()
        await engine.dispose()
    engine2 = create_engine(migrated_url)  # a fresh engine: all of them are durable
    try:
        assert len(await SqlBindingRepository(engine2).load_unexpired(NOW)) == n
    finally:
        await engine2.dispose()


async def test_a_failed_batch_fails_its_waiters_and_the_writer_survives(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-schema.db'}")
    repo = SqlBindingRepository(engine)
    try:
        results = await asyncio.gather(repo.apply([up(binding(1))]), repo.apply([up(binding(2))]),
                                       return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
        with pytest.raises(Exception, match="registrations"):
            await repo.apply([up(binding(3))])
    finally:
        await repo.close()
        await engine.dispose()


_CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    sys.path.insert(0, {here!r})
    from storage_helpers import binding, up
    from switch.storage import SqlBindingRepository, create_engine

    async def main():
        repo = SqlBindingRepository(create_engine({url!r}))
        await asyncio.gather(*(repo.apply([up(binding(i))]) for i in range(50)))
        sys.stdout.write("acknowledged\\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no dispose, no checkpoint

    asyncio.run(main())
""")


async def test_acknowledged_bindings_survive_kill_9(migrated_url: str) -> None:
    code = _CHILD.format(here=str(Path(__file__).parent), url=migrated_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    out, err = await proc.communicate()
    assert out == b"acknowledged\n", err.decode()[-2000:]
    assert proc.returncode == -9
    engine = create_engine(migrated_url)
    try:
        got = await SqlBindingRepository(engine).load_unexpired(NOW)
    finally:
        await engine.dispose()
    assert sorted(got, key=lambda b: b.cseq) == [binding(i) for i in range(50)]


async def test_registrar_restart_restores_routing(migrated_url: str) -> None:
    """Persist the registrar's changes before answering; a new process loads them back."""
    account = make_account("501410", "acme.example", "pw", "acme:501410")
    raw = ("REGISTER sip:acme.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n"
           "From: <sip:501410@acme.example>;tag=1\r\nTo: <sip:501410@acme.example>\r\n"
           "Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:501410@10.0.0.5>;expires=600\r\n"
           "User-Agent: DECT/1\r\nContent-Length: 0\r\n\r\n")
    req = parse_message(raw.encode())
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine)
    registrar = Registrar(LocationService())
    try:
        outcome = registrar.process(req, account, Source("tcp", "198.51.100.2", 5062, 11), NOW)  # type: ignore[arg-type]
        await repo.apply(outcome.changes)
        assert outcome.status == 200
    finally:
        await repo.close()
        await engine.dispose()
    engine = create_engine(migrated_url)
    try:
        fresh = LocationService()
        fresh.load(await SqlBindingRepository(engine).load_unexpired(NOW + 1))
    finally:
        await engine.dispose()
    [b] = fresh.lookup("acme:501410", NOW + 1)
    assert (b.contact, b.source_host, b.source_port, b.transport, b.conn_id) == (
        "sip:501410@10.0.0.5", "198.51.100.2", 5062, "tcp", None)


async def test_commit_delay_groups_registrations_arriving_meanwhile(migrated_url: str) -> None:
    """Issue 21: under load, REGISTERs arriving a few milliseconds apart share a commit when
    the writer waits `commit_delay`; each apply() still returns only once its change is
    durable. After a quiet spell the first one is committed at once (nothing would join)."""
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine, commit_delay=0.3)
    try:
        async def later(i: int) -> None:
            await asyncio.sleep(0.02 * i)
            await repo.apply([up(binding(i, aor=f"acme:{i}"))])

        await asyncio.gather(*(later(i) for i in range(5)))
        assert repo.batched_requests == 5
        assert repo.commits == 2  # the first alone, then the four that came meanwhile
        assert len(await repo.load_unexpired(NOW)) == 5
    finally:
        await repo.close()
        await engine.dispose()
