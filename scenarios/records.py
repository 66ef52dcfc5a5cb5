"""Reading the switch's call records: from its database when the runner started it
(`RecordReader`), or through its admin API with a token (`ApiRecordReader`, issue 18:
`wte scenario run --target HOST:PORT --api-token TOKEN`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from rating.cdr import CallRecord


class RecordSource(Protocol):
    async def find(self, call_id: str) -> CallRecord | None: ...

    async def close(self) -> None: ...


class RecordReader:
    """Finds the call record of a Call-ID in the database of a data directory."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self._engine: Any = None
        self._repo: Any = None

    async def find(self, call_id: str) -> CallRecord | None:
        if self._repo is None:
            from switch.storage.cdrs import SqlCallRecordRepository
            from switch.storage.cli import database_url
            from switch.storage.engine import create_engine

            self._engine = create_engine(database_url(self.data_dir))
            self._repo = SqlCallRecordRepository(self._engine)
        records: list[CallRecord] = list(await self._repo.recent(500))
        return next((r for r in records if r.call_id == call_id), None)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


class ApiRecordReader:
    """Finds the call record of a Call-ID through `GET /api/v1/calls?call_id=...` of a
    running switch, with an operator's or customer admin's token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session: Any = None

    async def find(self, call_id: str) -> CallRecord | None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=aiohttp.ClientTimeout(total=10))
        async with self._session.get(f"{self.base_url}/api/v1/calls",
                                     params={"call_id": call_id, "limit": "5"}) as resp:
            if resp.status in (401, 404):
                raise PermissionError(f"the switch's API refused the token ({resp.status})")
            resp.raise_for_status()
            rows = await resp.json()
        if not rows:
            return None
        names = {f.name for f in dataclasses.fields(CallRecord)}
        return CallRecord(**{k: v for k, v in rows[0].items() if k in names})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def record_field(record: CallRecord, name: str) -> str | None:
    """A field of a record as text (None when empty); `duration` is computed."""
    if name == "duration":
        return f"{record.duration:.3f}"
    names = {f.name for f in dataclasses.fields(record)}
    if name not in names:
        raise KeyError(name)
    value = getattr(record, name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
