"""Per-user call settings in memory, written through to the database (issue 15).

Routing reads `settings_for(user)` on every call: a dict lookup, no database on the call
path. Every change is written to the database first and put in memory once committed, so
a feature code confirms only what survives a restart; `start()` loads every stored user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from dialplan import User
from dialplan.user_settings import DEFAULT_SETTINGS, UserSettings
from switch.storage.user_settings import CallLog

log = logging.getLogger("switch.user_settings")


class SettingsStore(Protocol):
    """What the service needs of the database (`switch.storage.user_settings`)."""

    async def load_all(self) -> dict[tuple[str, str], UserSettings]: ...

    async def save(self, customer: str, number: str, settings: UserSettings,
                   now: float) -> None: ...

    async def call_log(self, customer: str, number: str, *, limit: int = 50,
                       mark_read: float | None = None) -> CallLog: ...


def user_key(user: User) -> tuple[str, str]:
    return user.customer.id, user.full_number


class UserSettingsService:
    """`settings_for(user)` from memory; `update(user, settings)` writes through."""

    def __init__(self, store: SettingsStore,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = wall_clock
        self._settings: dict[tuple[str, str], UserSettings] = {}
        # told ("customer:number", on) when a user's DND changes, and for every user in DND
        # at start: presence shows it (RFC 3856 PIDF, issue 17)
        self.dnd_observer: Callable[[str, bool], None] | None = None
        # cluster (issue 22): told ("customer", "number") after a change is stored
        self.changed: Callable[[str, str], None] | None = None

    async def start(self) -> None:
        self._settings = await self.store.load_all()
        log.info("user settings loaded users=%d", len(self._settings))
        for (customer, number), settings in self._settings.items():
            if settings.dnd:
                self._tell_dnd(customer, number, True)

    def _tell_dnd(self, customer: str, number: str, on: bool) -> None:
        if self.dnd_observer is None:
            return
        try:
            self.dnd_observer(f"{customer}:{number}", on)
        except Exception:  # presence is a view: never the feature code's failure
            log.exception("DND observer failed for %s:%s", customer, number)

    async def stop(self) -> None:
        return None

    def settings_for(self, user: User) -> UserSettings:
        return self._settings.get(user_key(user), DEFAULT_SETTINGS)

    def settings_by_key(self, customer: str, number: str) -> UserSettings:
        return self._settings.get((customer, number), DEFAULT_SETTINGS)

    async def update(self, user: User, settings: UserSettings) -> None:
        """Store `settings` for `user`: durable when this returns, then used by routing.
        A database error propagates (the feature code is refused, memory unchanged)."""
        key = user_key(user)
        if self._settings.get(key, DEFAULT_SETTINGS) == settings:
            return
        await self.store.save(key[0], key[1], settings, self.clock())
        before = self._settings.get(key, DEFAULT_SETTINGS)
        self._settings[key] = settings
        log.info("user settings changed user=%s settings=%s", user.full_number, settings)
        if before.dnd != settings.dnd:
            self._tell_dnd(key[0], key[1], settings.dnd)
        if self.changed is not None:
            self.changed(key[0], key[1])

    async def refresh(self) -> None:
        """Re-read every user's settings (a peer node changed one, issue 22); presence
        hears of the DND changes."""
        fresh = await self.store.load_all()
        before, self._settings = self._settings, fresh
        for key in before.keys() | fresh.keys():
            was = before.get(key, DEFAULT_SETTINGS).dnd
            now = fresh.get(key, DEFAULT_SETTINGS).dnd
            if was != now:
                self._tell_dnd(key[0], key[1], now)

    async def call_log(self, user: User, *, mark_read: bool = False,
                       limit: int = 50) -> CallLog:
        """The user's placed, received and missed calls; reading it with `mark_read`
        resets the missed counter."""
        return await self.store.call_log(user.customer.id, user.full_number, limit=limit,
                                         mark_read=self.clock() if mark_read else None)
