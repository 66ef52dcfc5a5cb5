"""Call records in the database (rating.cdr.CallRecordRepository)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from rating.cdr import RESTART_CAUSE, CallRecord

from .models import CallRecordRow

# the record fields the table stores (a field added to CallRecord before its migration is
# kept in memory only)
_FIELDS = [f.name for f in dataclasses.fields(CallRecord)
           if f.name in CallRecordRow.__table__.columns]


def _row(record: CallRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _FIELDS}


def _record(row: CallRecordRow) -> CallRecord:
    return CallRecord(**{name: getattr(row, name) for name in _FIELDS})


class SqlCallRecordRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def open(self, record: CallRecord) -> None:
        async with self._sessions() as s, s.begin():
            s.add(CallRecordRow(**_row(record)))

    async def close(self, record: CallRecord) -> None:
        values = _row(record)
        rid = values.pop("id")
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                update(CallRecordRow).where(CallRecordRow.id == rid).values(**values))
            if getattr(result, "rowcount", 1) == 0:
                s.add(CallRecordRow(id=rid, **values))

    async def write_batch(self, items: Sequence[tuple[str, CallRecord]]) -> None:
        """Apply opens and closes in one transaction, coalesced per record: a call that
        both started and ended within the batch is one INSERT of its final state."""
        final: dict[str, tuple[bool, CallRecord]] = {}
        for kind, record in items:
            opened_here = kind == "open" or final.get(record.id, (False, record))[0]
            final[record.id] = (opened_here, record)
        inserts = [_row(r) for new, r in final.values() if new]
        updates = [r for new, r in final.values() if not new]
        async with self._sessions() as s, s.begin():
            if inserts:
                await s.execute(insert(CallRecordRow), inserts)
            for record in updates:
                values = _row(record)
                rid = values.pop("id")
                await s.execute(update(CallRecordRow).where(CallRecordRow.id == rid)
                                .values(**values))

    async def close_orphans(self, now: float, cause: str = RESTART_CAUSE) -> int:
        """Close the records of calls that were in progress when the switch stopped."""
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                update(CallRecordRow).where(CallRecordRow.end.is_(None)).values(
                    end=now, disposition="interrupted", cause=cause, hangup_side="switch"))
            return int(getattr(result, "rowcount", 0) or 0)

    async def recent(self, limit: int = 100) -> Sequence[CallRecord]:
        async with self._sessions() as s:
            rows = (await s.execute(
                select(CallRecordRow).order_by(CallRecordRow.start.desc()).limit(limit))).scalars()
            return [_record(r) for r in rows]
