"""`wte registrations`: list_registrations while the switch writes and after it died."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from storage_helpers import NOW, binding, up

from switch.storage import SqlBindingRepository, StorageError, create_engine, list_registrations
from switch.storage.bindings import binding_to_row
from switch.storage.cli import read_registrations
from switch.storage.models import RegistrationRow


async def test_lists_one_line_per_unexpired_binding(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    repo = SqlBindingRepository(engine)
    try:
        await repo.apply([up(binding(1)), up(binding(2, aor="acme:501411")),
                          up(binding(3, expires_at=NOW - 1))])
    finally:
        await repo.close()
        await engine.dispose()
    out = io.StringIO()
    assert await list_registrations(migrated_url, out, NOW + 100) == 0  # exit status
    lines = out.getvalue().splitlines()
    assert lines[0] == "account\tcontact\tsource\ttransport\tuser_agent\texpires_in"
    assert lines[1:] == [
        "acme:501410\tsip:1@10.0.0.1:5060\t203.0.113.9:40001\tudp\tYealink SIP-T46U 108.86.0.20\t3500",
        "acme:501411\tsip:2@10.0.0.2:5060\t203.0.113.9:40002\tudp\tYealink SIP-T46U 108.86.0.20\t3500",
    ]


async def test_readers_are_not_blocked_by_an_open_write(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        await SqlBindingRepository(engine).apply([up(binding(1))])
        async with engine.connect() as writer:
            await writer.execute(RegistrationRow.__table__.insert(), [binding_to_row(binding(2))])
            out = io.StringIO()  # the write transaction is still open (WAL on SQLite)
            assert await list_registrations(migrated_url, out, NOW) == 0
            assert len(out.getvalue().splitlines()) == 2  # header + the committed binding
            await writer.rollback()
    finally:
        await engine.dispose()


async def test_missing_database_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}"
    out = io.StringIO()
    assert await list_registrations(url, out, NOW) == 1
    assert out.getvalue().startswith("error: no database") and "wte db upgrade" in out.getvalue()
    with pytest.raises(StorageError, match="wte db upgrade"):
        await read_registrations(url, NOW)
    assert not (tmp_path / "absent.db").exists()


async def test_schema_missing_says_what_to_do(db_url: str) -> None:
    with pytest.raises(StorageError, match="wte db upgrade"):
        await read_registrations(db_url, NOW)
    out = io.StringIO()
    assert await list_registrations(db_url, out, NOW) == 1 and "wte db upgrade" in out.getvalue()
