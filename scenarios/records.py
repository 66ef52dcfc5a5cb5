"""Reading the switch's call records, where the runner can reach its database."""

from __future__ import annotations

import dataclasses
from typing import Any

from rating.cdr import CallRecord


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
