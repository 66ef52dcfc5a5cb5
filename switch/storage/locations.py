"""Self-declared emergency locations in the database (emergency.locations)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from emergency.locations import DeclaredLocation

from .models import EmergencyLocationRow

_FIELDS = [f.name for f in dataclasses.fields(DeclaredLocation)]


class SqlLocationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def save(self, location: DeclaredLocation) -> None:
        async with self._sessions() as s, s.begin():
            await s.merge(EmergencyLocationRow(**{f: getattr(location, f) for f in _FIELDS}))

    async def load_all(self) -> Sequence[DeclaredLocation]:
        async with self._sessions() as s:
            rows = (await s.execute(select(EmergencyLocationRow))).scalars()
            return [DeclaredLocation(**{f: getattr(r, f) for f in _FIELDS}) for r in rows]
