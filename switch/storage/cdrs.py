"""Call records in the database (rating.cdr.CallRecordRepository).

Every write is an upsert of the record's whole state, keyed by the record id: replaying a
write (the spool of switch.cdr_writer after a crash, a retry after a timeout whose commit
did land) never duplicates a record nor fails on the primary key.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rating.cdr import RESTART_CAUSE, CallRecord

from .engine import sqlite_path
from .fastwrite import SqliteBatchWriter
from .models import CallRecordRow

# the record fields the table stores (a field added to CallRecord before its migration is
# kept in memory only)
_FIELDS = [f.name for f in dataclasses.fields(CallRecord)
           if f.name in CallRecordRow.__table__.columns]


# one C-level call reads every stored field of a record (a dict comprehension of getattr
# calls cost a sixth of the record writer's thread in a profile at 700 calls/s)
_VALUES = operator.attrgetter(*_FIELDS)


def _row(record: CallRecord) -> dict[str, Any]:
    return dict(zip(_FIELDS, _VALUES(record), strict=True))


_COLUMNS = [getattr(CallRecordRow, name) for name in _FIELDS]


def _record(row: Any) -> CallRecord:
    return CallRecord(**{name: getattr(row, name) for name in _FIELDS})


def coalesce(items: Sequence[tuple[str, CallRecord]]) -> list[CallRecord]:
    """The final state of each record in `items` (open/answer/close events in order),
    in the order records first appear."""
    final: dict[str, CallRecord] = {}
    for _kind, record in items:
        final[record.id] = record
    return list(final.values())


class SqlCallRecordRepository:
    def __init__(self, engine: AsyncEngine, *, node_id: str | None = None) -> None:
        self._engine = engine
        # cluster (issue 22): every record written carries the node handling the call, and
        # this node's orphans are only its own (a peer's open records are live calls)
        self.node_id = node_id
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite file: the writer's batches go through a connection of their own, one
        # worker-thread hop per batch (storage/fastwrite.py, issue 21)
        path = sqlite_path(engine.url)
        self._direct = None if path is None else SqliteBatchWriter(
            path, CallRecordRow.__tablename__, _FIELDS, ("id",),
            [name for name in _FIELDS if name != "id"])

    async def _upsert(self, s: AsyncSession, records: Sequence[CallRecord]) -> None:
        if not records:
            return
        dialect = self._engine.dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        if dialect not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"call records on {dialect}")
        rows = [_row(r) for r in records]
        fields = _FIELDS
        if self.node_id is not None:
            fields = [*_FIELDS, "node_id"]
            for row in rows:
                row["node_id"] = self.node_id
        stmt = module.insert(CallRecordRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CallRecordRow.id],
            set_={name: getattr(stmt.excluded, name) for name in fields if name != "id"})
        await s.execute(stmt, rows)

    async def open(self, record: CallRecord) -> None:
        async with self._sessions() as s, s.begin():
            await self._upsert(s, [record])

    async def close(self, record: CallRecord) -> None:
        async with self._sessions() as s, s.begin():
            await self._upsert(s, [record])

    async def write_batch(self, items: Sequence[tuple[str, CallRecord]]) -> None:
        """Apply opens, answers and closes in one transaction, coalesced per record: a
        call that started and ended within the batch is one upsert of its final state."""
        if self._direct is not None:
            # the tuples in column order straight from the records (one C-level call
            # each), committed on the writer's own thread: no executor hop per batch
            rows = [_VALUES(r) for r in coalesce(items)]
            if rows:
                await self._direct.submit_rows((), rows)
            return
        async with self._sessions() as s, s.begin():
            await self._upsert(s, coalesce(items))

    def shutdown(self) -> None:
        """Stop the SQLite writer's thread once what it was handed is committed."""
        if self._direct is not None:
            self._direct.close()

    async def close_orphans(self, now: float, cause: str = RESTART_CAUSE,
                            started_before: float | None = None) -> int:
        """Close the records of calls that were in progress when the switch stopped
        (only those started before `started_before` when given: the calls of this run,
        written while the database was away, are not orphans)."""
        cond: ColumnElement[bool] = CallRecordRow.end.is_(None)
        if started_before is not None:
            cond = and_(cond, CallRecordRow.start < started_before)
        if self.node_id is not None:
            cond = and_(cond, CallRecordRow.node_id == self.node_id)
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                update(CallRecordRow).where(cond).values(
                    end=now, disposition="interrupted", cause=cause, hangup_side="switch"))
            return int(getattr(result, "rowcount", 0) or 0)

    async def open_record_nodes(self) -> set[str]:
        """Node ids that own open records (cluster: compared with the live nodes)."""
        async with self._sessions() as s:
            rows = await s.execute(select(CallRecordRow.node_id).distinct().where(
                CallRecordRow.end.is_(None), CallRecordRow.node_id.is_not(None)))
            return {n for (n,) in rows if n is not None}

    async def close_node_records(self, node_id: str, now: float, cause: str) -> int:
        """Close the open records of a node that died (issue 22): its calls ended with it."""
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                update(CallRecordRow).where(CallRecordRow.end.is_(None),
                                            CallRecordRow.node_id == node_id).values(
                    end=now, disposition="interrupted", cause=cause, hangup_side="switch"))
            return int(getattr(result, "rowcount", 0) or 0)

    # reads name the record's columns only: a column of a later revision (node_id) is not
    # needed to read a record, and a database one revision behind still answers
    async def recent(self, limit: int = 100) -> Sequence[CallRecord]:
        async with self._sessions() as s:
            rows = await s.execute(select(*_COLUMNS).order_by(CallRecordRow.start.desc())
                                   .limit(limit))
            return [_record(r) for r in rows]

    async def get(self, record_id: str) -> CallRecord | None:
        async with self._sessions() as s:
            row = (await s.execute(select(*_COLUMNS).where(CallRecordRow.id == record_id))).first()
            return None if row is None else _record(row)
