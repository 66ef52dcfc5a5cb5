"""The database of the switch: its schema brought to head before any service reads it.

One `AsyncEngine` is created in the composition root and shared by every storage user
(bindings, call records, emergency locations, pools, provisioning); this service runs the
migrations first in the start order, so a fresh data directory just works and an upgraded
switch never runs on an old schema (idempotent and quick when up to date).
"""

from __future__ import annotations

import asyncio
import logging

from switch.storage.cli import db_upgrade

log = logging.getLogger("switch.database")


class DatabaseService:
    def __init__(self, url: str) -> None:
        self.url = url

    async def start(self) -> None:
        await asyncio.to_thread(db_upgrade, self.url)

    async def stop(self) -> None:
        return None  # the switch disposes the shared engine after every service stopped
