"""Subscriptions (RFC 6665) in the database, so that they outlive a restart.

One row per subscription, written when it is created, refreshed or ended (never per
NOTIFY); the switch reloads the unexpired ones at start and NOTIFYs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import BigInteger, Double, Integer, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from switch.subscription.store import StoredSubscription

from .models import Base


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    package: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(255))
    watcher: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[float] = mapped_column(Double, index=True)
    version: Mapped[int] = mapped_column(BigInteger)
    call_id: Mapped[str] = mapped_column(Text)
    local_tag: Mapped[str] = mapped_column(String(128))
    remote_tag: Mapped[str] = mapped_column(String(255))
    local_uri: Mapped[str] = mapped_column(Text)
    remote_uri: Mapped[str] = mapped_column(Text)
    remote_target: Mapped[str] = mapped_column(Text)
    route_set: Mapped[str] = mapped_column(Text)  # one Record-Route value per line
    local_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    remote_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    transport: Mapped[str] = mapped_column(String(8))
    peer_host: Mapped[str] = mapped_column(String(255))
    peer_port: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(64))


_FIELDS = [f.name for f in dataclasses.fields(StoredSubscription)]


def _row(sub: StoredSubscription) -> SubscriptionRow:
    values = {f: getattr(sub, f) for f in _FIELDS}
    values["route_set"] = "\n".join(sub.route_set)
    return SubscriptionRow(**values)


def _stored(row: SubscriptionRow) -> StoredSubscription:
    values = {f: getattr(row, f) for f in _FIELDS}
    values["route_set"] = tuple(line for line in row.route_set.split("\n") if line)
    return StoredSubscription(**values)


class SqlSubscriptionRepository:
    """`switch.subscription.store.SubscriptionRepository` on SQLAlchemy."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def save(self, sub: StoredSubscription) -> None:
        async with self._sessions() as s, s.begin():
            await s.merge(_row(sub))

    async def delete(self, sub_id: str) -> None:
        async with self._sessions() as s, s.begin():
            await s.execute(delete(SubscriptionRow).where(SubscriptionRow.id == sub_id))

    async def load_unexpired(self, now: float) -> Sequence[StoredSubscription]:
        async with self._sessions() as s:
            rows = (await s.execute(select(SubscriptionRow)
                                    .where(SubscriptionRow.expires_at > now))).scalars()
            return [_stored(r) for r in rows]

    async def delete_expired(self, now: float) -> int:
        async with self._sessions() as s, s.begin():
            result = await s.execute(delete(SubscriptionRow)
                                     .where(SubscriptionRow.expires_at <= now))
            return int(getattr(result, "rowcount", 0) or 0)
