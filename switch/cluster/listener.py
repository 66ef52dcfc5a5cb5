"""The asyncpg adapter of the cluster channel: LISTEN/NOTIFY and node liveness.

One asyncpg connection per node, outside SQLAlchemy's pool (a pooled connection would be
handed back, and its LISTEN with it). It carries the node's id as `application_name`, so
its session is the node's heartbeat: when a node dies, even with kill -9, the kernel closes
its socket, PostgreSQL ends the session, and peers see it gone from pg_stat_activity.

Notices received are decoded (switch.cluster.notices) and the resulting actions are run
one at a time by a worker task, duplicates that are still waiting coalesced. When the
connection drops, the link reconnects every `reconnect_delay` seconds and, once back, asks
for a full reload (notices sent meanwhile are lost to this node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from .notices import (
    RELOAD_ALL,
    Action,
    Kind,
    Notice,
    NoticeError,
    action_for,
    channel_for,
    decode,
    node_application_name,
    node_of_application,
)

log = logging.getLogger("switch.cluster")

ActionHandler = Callable[[Action, str], Awaitable[None]]


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy URL (`postgresql+asyncpg://`);
    the `schema` parameter (switch.storage.engine) is ours, not a server setting."""
    u = make_url(url).set(drivername="postgresql").difference_update_query(["schema"])
    return u.render_as_string(hide_password=False)


def url_schema(url: str) -> str | None:
    schema = make_url(url).query.get("schema")
    return schema if isinstance(schema, str) else None


class ClusterLink:
    """LISTEN on the cluster channel, NOTIFY on it, and tell which nodes are alive."""

    def __init__(self, url: str, node: str, handler: ActionHandler, *,
                 reconnect_delay: float = 1.0) -> None:
        self.dsn = asyncpg_dsn(url)
        self.channel = channel_for(url_schema(url))
        self.node = node
        self.handler = handler
        self.reconnect_delay = reconnect_delay
        self._conn: Any = None  # asyncpg.Connection (untyped library)
        self._lock = asyncio.Lock()  # one query at a time on the connection
        self._lost = asyncio.Event()
        self._pending: list[tuple[Action, str]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.received = 0  # notices from peers (metrics, tests)
        self.dropped = 0  # payloads that were not notices

    async def start(self) -> None:
        """Connect and LISTEN before the node takes traffic; raises if the database does
        not answer (the node would otherwise serve with stale state)."""
        await self._connect()
        self._tasks = [asyncio.create_task(self._supervise(), name="cluster-link"),
                       asyncio.create_task(self._work(), name="cluster-actions")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    # -- the connection --

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, server_settings={"application_name": node_application_name(self.node)})
        self._lost.clear()
        conn.add_termination_listener(lambda _c: self._lost.set())
        await conn.add_listener(self.channel, self._on_payload)
        self._conn = conn
        log.info("cluster: node %s listening on channel %s", self.node, self.channel)

    async def _supervise(self) -> None:
        while True:
            await self._lost.wait()
            self._conn = None
            log.warning("cluster: lost the database session; reconnecting")
            while self._conn is None:
                await asyncio.sleep(self.reconnect_delay)
                try:
                    await self._connect()
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("cluster: reconnect failed (%s)", exc)
            for action in RELOAD_ALL:  # notices sent while away are lost to us
                self._queue(action, "")

    # -- receiving --

    def _on_payload(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = decode(payload)
        except NoticeError as exc:
            self.dropped += 1
            log.warning("cluster: dropped a payload that is no notice (%s)", exc)
            return
        action = action_for(notice, self.node)
        if action is not None:
            self.received += 1
            self._queue(action, notice.key)

    def _queue(self, action: Action, key: str) -> None:
        item = (action, key)
        if item not in self._pending:  # a reload still waiting covers a second notice
            self._pending.append(item)
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                action, key = self._pending.pop(0)
                try:
                    await self.handler(action, key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("cluster: %s %r failed", action.value, key)

    # -- sending and asking --

    async def notify(self, kind: Kind, key: str = "") -> None:
        """Tell the peers; a failure is logged, never raised (the change is committed and
        peers catch up at their next reload)."""
        payload = Notice(self.node, kind, key).encode()
        conn = self._conn
        if conn is None:
            log.warning("cluster: not connected; %s %r not announced", kind.value, key)
            return
        try:
            async with self._lock:
                await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cluster: could not announce %s %r (%s)", kind.value, key, exc)

    async def live_nodes(self) -> set[str] | None:
        """Ids of the nodes that hold a session on the database; None when unknown."""
        conn = self._conn
        if conn is None:
            return None
        async with self._lock:
            rows = await conn.fetch(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1",
                "wte-node:%")
        return {n for r in rows if (n := node_of_application(r["application_name"])) is not None}
