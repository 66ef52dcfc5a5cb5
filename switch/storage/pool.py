"""The live pool state in the database (issue 25): `site_pool_usage`, one row per site and
month (seconds used, the pool's size, the highest alert raised), and `rated_calls`, one row
per call record counted.

Exactly once: a record is counted in one transaction that (1) takes the pool's row (created
if missing; this write comes first, so SQLite holds its write lock from the start and
PostgreSQL's `SELECT ... FOR UPDATE` serialises two switches rating for the same site),
(2) rates the record against the state read (rating.live, pure), (3) inserts its
`rated_calls` row with ON CONFLICT DO NOTHING and (4) writes the pool's new state. A record
already counted (a replay after a crash, the catch-up meeting a record the live path rated)
finds its `rated_calls` row and the transaction is rolled back: nothing counts twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Double, Index, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from rating.bundle import PoolKey
from rating.cdr import CallRecord
from rating.live import LiveRater, LiveRating, PoolState
from switch.storage.engine import upsert_insert

from .cdrs import _FIELDS as _RECORD_FIELDS
from .models import Base, CallRecordRow


class SitePoolUsageRow(Base):
    """One site's pool for one calendar month of the site's time zone."""

    __tablename__ = "site_pool_usage"

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-11"
    used_seconds: Mapped[int] = mapped_column(BigInteger)
    pool_seconds: Mapped[int] = mapped_column(BigInteger)  # at the last call counted
    alerted: Mapped[int] = mapped_column(Integer)  # highest alert percent raised, 0: none
    updated_at: Mapped[float] = mapped_column(Double)


class RatedCallRow(Base):
    """A call record counted by the live state (its rated line, for the operator)."""

    __tablename__ = "rated_calls"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(7))
    rate_class: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[int] = mapped_column(Integer)
    drawn_seconds: Mapped[int] = mapped_column(Integer)
    charged_seconds: Mapped[int] = mapped_column(Integer)
    amount: Mapped[str] = mapped_column(String(32))  # a decimal as text (exact on SQLite)
    rated_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_rated_calls_site_month", "customer", "site", "month"),)


class _AlreadyCounted(Exception):
    """Rolls back a transaction whose record was counted before."""



def _where(key: PoolKey) -> Any:
    u = SitePoolUsageRow
    return (u.customer == key.customer) & (u.site == key.site) & (u.month == key.month)


class SqlPoolStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def count(self, record: CallRecord, rater: LiveRater,
                    now: float | None = None) -> LiveRating | None:
        """Count `record` once: its rating and the pool's new state, or None when it was
        counted before (or is not rateable)."""
        if not rater.rateable(record):
            return None
        at = time.time() if now is None else now
        pool = rater.pool_of(record)
        try:
            async with self._sessions() as s, s.begin():
                state = PoolState()
                if pool is not None:
                    state = await self._lock(s, pool[0], pool[1], at)
                result = rater.rate(record, state)
                if result is None:
                    raise _AlreadyCounted  # not rateable after all: write nothing
                line = result.line
                ins = upsert_insert(self._engine, RatedCallRow).values(
                    record_id=line.record_id, customer=line.customer, site=line.site,
                    month=line.month, rate_class=line.rate_class.value, zone=line.zone,
                    seconds=line.seconds, drawn_seconds=line.drawn_seconds,
                    charged_seconds=line.charged_seconds, amount=str(line.amount),
                    rated_at=at,
                ).on_conflict_do_nothing(index_elements=[RatedCallRow.record_id])
                inserted = (await s.execute(ins.returning(RatedCallRow.record_id))).first()
                if inserted is None:
                    raise _AlreadyCounted
                if result.key is not None and result.state is not None:
                    await s.execute(update(SitePoolUsageRow).where(_where(result.key)).values(
                        used_seconds=result.state.used, alerted=result.state.alerted,
                        pool_seconds=result.size, updated_at=at))
        except _AlreadyCounted:
            return None
        return result

    async def _lock(self, s: AsyncSession, key: PoolKey, size: int, now: float) -> PoolState:
        ins = upsert_insert(self._engine, SitePoolUsageRow).values(
            customer=key.customer, site=key.site, month=key.month, used_seconds=0,
            pool_seconds=size, alerted=0, updated_at=now,
        ).on_conflict_do_nothing(index_elements=[SitePoolUsageRow.customer,
                                                 SitePoolUsageRow.site, SitePoolUsageRow.month])
        await s.execute(ins)
        row = (await s.execute(
            select(SitePoolUsageRow.used_seconds, SitePoolUsageRow.alerted)
            .where(_where(key)).with_for_update())).one()
        return PoolState(int(row.used_seconds), int(row.alerted))

    async def state(self, key: PoolKey) -> tuple[PoolState, int] | None:
        """(state, pool size) of a pool, None when no call drew on it yet."""
        async with self._sessions() as s:
            row = (await s.execute(
                select(SitePoolUsageRow.used_seconds, SitePoolUsageRow.alerted,
                       SitePoolUsageRow.pool_seconds).where(_where(key)))).first()
        if row is None:
            return None
        return PoolState(int(row.used_seconds), int(row.alerted)), int(row.pool_seconds)

    async def states(self, since_month: str) -> dict[PoolKey, PoolState]:
        """Every pool of `since_month` ("2026-11") and later: the policy's view at start."""
        async with self._sessions() as s:
            rows = (await s.execute(
                select(SitePoolUsageRow.customer, SitePoolUsageRow.site, SitePoolUsageRow.month,
                       SitePoolUsageRow.used_seconds, SitePoolUsageRow.alerted)
                .where(SitePoolUsageRow.month >= since_month))).all()
        return {PoolKey(r.customer, r.site, r.month): PoolState(int(r.used_seconds),
                                                                int(r.alerted)) for r in rows}

    async def uncounted(self, since: float, limit: int = 1000) -> Sequence[CallRecord]:
        """Closed, answered records of users started since `since` that no `rated_calls`
        row counts yet (a crash between the record and its count, a database outage), in
        call order."""
        columns = [getattr(CallRecordRow, name) for name in _RECORD_FIELDS]
        q = (select(*columns)
             .outerjoin(RatedCallRow, RatedCallRow.record_id == CallRecordRow.id)
             .where(RatedCallRow.record_id.is_(None), CallRecordRow.start >= since,
                    CallRecordRow.answer.is_not(None), CallRecordRow.end.is_not(None),
                    CallRecordRow.customer.is_not(None), CallRecordRow.site.is_not(None))
             .order_by(CallRecordRow.start, CallRecordRow.id).limit(limit))
        async with self._sessions() as s:
            rows = (await s.execute(q)).all()
        return [CallRecord(**dict(zip(_RECORD_FIELDS, row, strict=True))) for row in rows]
