"""A node of a cluster: wires the change channel to the services (issue 22).

Sending: the services tell this node what they committed (a REGISTER's binding changes, a
user's settings, a forced schedule mode, a mailbox's counts, a dialplan reload on SIGHUP)
and it announces that on the channel. Receiving: a REGISTER's changes travel in the notice
and are applied as they are (no database read: a cluster registers about as fast as one
node); everything else is reloaded from the database (an AoR whose changes did not fit,
every user's settings, the schedule modes, the mailboxes) or re-read from the dialplan
file.

Node failure: every `reap_interval` seconds the node compares the nodes that own open call
records with the nodes that hold a session on the database, and closes the records of the
dead ones ("abandoned: node failed"); a node restarting under its id closes its own at
start (switch.cdr_writer). Only PostgreSQL has more than one node: on SQLite there is no
cluster and this service is not built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from types import SimpleNamespace
from typing import Any, Protocol, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from devices.location import Binding, BindingChange, ChangeKind, LocationService
from switch.storage.bindings import binding_to_row, row_to_binding
from switch.storage.models import RegistrationRow

from .listener import ClusterLink
from .notices import NODE_FAILED_CAUSE, Action, Body, Kind, Notice, dead_nodes, newer_wins

log = logging.getLogger("switch.cluster")
_TABLE = cast(Table, RegistrationRow.__table__)
_AOR_CHUNK = 500  # AoRs per query: bound parameters well below asyncpg's limit
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$")


def valid_node_id(text: str) -> bool:
    """Letters, digits, '.', '_', '-', up to 48 (it becomes an application_name)."""
    return NODE_ID.match(text) is not None


class Registrations(Protocol):
    location: LocationService
    committed: Callable[[Sequence[BindingChange]], None] | None


class Plan(Protocol):
    def reload(self) -> None: ...


class Settings(Protocol):
    changed: Callable[[str, str], None] | None

    async def refresh(self) -> None: ...


class Schedules(Protocol):
    changed: Callable[[str, str], None] | None

    async def check(self) -> bool: ...


class Mailboxes(Protocol):
    async def reload(self) -> None: ...


class Lamps(Protocol):
    def message_waiting_changed(self, user: str) -> None: ...


class OrphanRecords(Protocol):
    async def open_record_nodes(self) -> set[str]: ...

    async def close_node_records(self, node_id: str, now: float, cause: str) -> int: ...


def replacement(current: Iterable[Binding], fresh: Iterable[Binding]) -> list[BindingChange]:
    """Changes that make an AoR's bindings in memory those of the database. A binding of
    this node that differs only by its connection (a phone connected here over TCP) keeps
    it: connection ids mean something only in the process that accepted them."""
    now_by_key = {b.key: b for b in current}
    changes: list[BindingChange] = []
    fresh_keys: set[str] = set()
    for b in fresh:
        fresh_keys.add(b.key)
        mine = now_by_key.get(b.key)
        if mine is not None and mine.without_connection() == b:
            continue
        changes.append(BindingChange(ChangeKind.UPSERT, b))
    changes.extend(BindingChange(ChangeKind.DELETE, b) for k, b in now_by_key.items()
                   if k not in fresh_keys)
    return changes


class ClusterNode:
    """A Service (start/stop) and a Reloadable (SIGHUP reloads the plan on every node)."""

    def __init__(self, url: str, node_id: str, *, engine: AsyncEngine,
                 registrations: Registrations, plan: Plan, settings: Settings,
                 schedules: Schedules, mailboxes: Mailboxes, lamps: Lamps,
                 records: OrphanRecords, reap_interval: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.node_id = node_id
        self.engine = engine
        self.registrations = registrations
        self.plan = plan
        self.settings = settings
        self.schedules = schedules
        self.mailboxes = mailboxes
        self.lamps = lamps
        self.records = records
        self.reap_interval = reap_interval
        self.clock = clock
        self.link = ClusterLink(url, node_id, self._act)
        self._sends: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self.reaped = 0  # call records closed for dead peers

    # -- life cycle --

    async def start(self) -> None:
        await self.link.start()
        self.registrations.committed = self._bindings_committed
        self.settings.changed = lambda c, n: self._announce(Kind.SETTINGS, f"{c}:{n}")
        self.schedules.changed = lambda c, s: self._announce(Kind.SCHEDULE, f"{c}/{s}")
        self._reaper = asyncio.create_task(self._reap_loop(), name="cluster-reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=2)
        await self.link.stop()

    # -- sending --

    def _announce(self, kind: Kind, key: str = "", body: Body | None = None) -> None:
        task = asyncio.ensure_future(self.link.notify(kind, key, body))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _bindings_committed(self, changes: Sequence[BindingChange]) -> None:
        by_aor: dict[str, Body] = {}
        for ch in changes:
            by_aor.setdefault(ch.binding.aor, []).append(
                {"op": "d" if ch.kind is ChangeKind.DELETE else "u",
                 "row": binding_to_row(ch.binding)})
        for aor, body in by_aor.items():
            self._announce(Kind.BINDING, aor, body)

    def reload(self) -> None:
        """SIGHUP: reload the dialplan here, and tell the peers to reload theirs."""
        self.plan.reload()
        self._announce(Kind.PLAN)

    def message_waiting_changed(self, user: str) -> None:
        """Voicemail's MessageWaiting: the lamps of this node, then the peers'."""
        self.lamps.message_waiting_changed(user)
        self._announce(Kind.MWI, user)

    # -- receiving --

    async def _act(self, action: Action, notices: list[Notice]) -> None:
        """One batch of notices: every notice that arrived for `action` meanwhile."""
        keys = list(dict.fromkeys(n.key for n in notices))  # a reload covers its duplicates
        log.debug("cluster: %s %d notices", action.value, len(notices))
        if action is Action.APPLY_BINDINGS:
            self.apply_remote(notices)
        elif action is Action.RELOAD_AOR:
            await (self.reload_all_bindings() if "" in keys else self.reload_aors(keys))
        elif action is Action.RELOAD_PLAN:
            self.plan.reload()
        elif action is Action.RELOAD_SETTINGS:
            await self.settings.refresh()
        elif action is Action.RELOAD_SCHEDULES:
            await self.schedules.check()
        elif action is Action.REFRESH_LAMP:
            await self.mailboxes.reload()
            for key in keys:
                if key:
                    self.lamps.message_waiting_changed(key)

    def apply_remote(self, notices: list[Notice]) -> None:
        """A peer's committed changes, in the order it sent them, newer registration wins."""
        loc = self.registrations.location
        for notice in notices:
            for change in notice.body or ():
                b = row_to_binding(SimpleNamespace(**change["row"])).without_connection()
                mine = loc.get(b.aor, b.key)
                delete = change["op"] == "d"
                if not newer_wins(mine.registered_at if mine is not None else None,
                                  b.registered_at, delete):
                    continue
                if not delete and mine is not None and mine.without_connection() == b:
                    continue  # the same binding, held here over its connection
                loc.apply([BindingChange(ChangeKind.DELETE if delete else ChangeKind.UPSERT, b)])

    async def _fetch(self, aors: list[str] | None) -> list[Binding]:
        query = select(_TABLE).where(_TABLE.c.expires_at > self.clock())
        if aors is not None:
            query = query.where(_TABLE.c.aor.in_(aors))
        async with self.engine.connect() as conn:
            rows: Any = await conn.execute(query)
            return [row_to_binding(r).without_connection() for r in rows]

    async def reload_aors(self, aors: list[str]) -> None:
        """Make these AoRs' bindings in memory those of the database (one query)."""
        by_aor: dict[str, list[Binding]] = {aor: [] for aor in aors}
        for i in range(0, len(aors), _AOR_CHUNK):
            for b in await self._fetch(aors[i:i + _AOR_CHUNK]):
                by_aor.setdefault(b.aor, []).append(b)
        loc = self.registrations.location
        for aor, fresh in by_aor.items():
            loc.apply(replacement(loc.current(aor, 0.0), fresh))

    async def reload_all_bindings(self) -> None:
        fresh = await self._fetch(None)
        loc = self.registrations.location
        by_aor: dict[str, list[Binding]] = {}
        for b in fresh:
            by_aor.setdefault(b.aor, []).append(b)
        for aor in set(loc.aors()) | by_aor.keys():
            loc.apply(replacement(loc.current(aor, 0.0), by_aor.get(aor, [])))
        log.info("cluster: reloaded %d bindings", len(fresh))

    # -- dead peers --

    async def reap(self) -> int:
        """Close the open call records of nodes without a database session."""
        live = await self.link.live_nodes()
        if live is None:
            return 0  # we cannot tell who is alive: close nothing
        closed = 0
        for node in sorted(dead_nodes(await self.records.open_record_nodes(),
                                      live | {self.node_id})):
            n = await self.records.close_node_records(node, self.clock(), NODE_FAILED_CAUSE)
            if n:
                log.warning("cluster: node %s is gone; closed %d call records it left open",
                            node, n)
            closed += n
        self.reaped += closed
        return closed

    async def _reap_loop(self) -> None:
        while True:
            try:
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cluster: cannot check the peers (%s)", exc)
            await asyncio.sleep(self.reap_interval)
