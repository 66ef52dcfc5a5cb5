"""The asyncpg adapter of the cluster channel: LISTEN/NOTIFY and node liveness.

One asyncpg connection per node, outside SQLAlchemy's pool (a pooled connection would be
handed back, and its LISTEN with it). It carries the node's id as `application_name`, so
its session is the node's heartbeat: when a node dies, even with kill -9, the kernel closes
its socket, PostgreSQL ends the session, and peers see it gone from pg_stat_activity.

Notices received are decoded (switch.cluster.notices) and the resulting actions are run
by a worker task in batches: every key waiting for one action goes in one call (one
SELECT for all the AoRs that changed meanwhile), duplicates coalesced. Notices sent are
batched the same way: what queued up while the previous batch was on the wire leaves in
one statement (group commit, as the bindings' writer does). When the
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
    Body,
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

ActionHandler = Callable[[Action, list[Notice]], Awaitable[None]]
_NOTIFY_MANY = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"


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
        self._pending: dict[Action, list[Notice]] = {}  # in arrival order
        self._wake = asyncio.Event()
        self._outbox: list[tuple[str, asyncio.Future[None]]] = []
        self._send_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.received = 0  # notices from peers (metrics, tests)
        self.dropped = 0  # payloads that were not notices

    async def start(self) -> None:
        """Connect and LISTEN before the node takes traffic; raises if the database does
        not answer (the node would otherwise serve with stale state)."""
        await self._connect()
        self._tasks = [asyncio.create_task(self._supervise(), name="cluster-link"),
                       asyncio.create_task(self._work(), name="cluster-actions"),
                       asyncio.create_task(self._send(), name="cluster-notify")]

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
                self._queue(action, Notice(self.node, Kind.PLAN, ""))  # key "": all

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
            self._queue(action, notice)

    def _queue(self, action: Action, notice: Notice) -> None:
        self._pending.setdefault(action, []).append(notice)
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, {}
                for action, notices in batch.items():
                    try:
                        await self.handler(action, notices)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("cluster: %s of %d notices failed", action.value,
                                      len(notices))

    # -- sending and asking --

    async def notify(self, kind: Kind, key: str = "", body: Body | None = None) -> None:
        """Tell the peers (returns once sent); a failure is logged, never raised: the change
        is committed and peers catch up at their next reload."""
        payload = Notice(self.node, kind, key, body).encode()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((payload, fut))
        self._send_wake.set()
        await fut

    async def _send(self) -> None:
        while True:
            await self._send_wake.wait()
            self._send_wake.clear()
            while self._outbox:
                batch, self._outbox = self._outbox, []
                conn = self._conn
                try:
                    if conn is None:
                        raise ConnectionError("not connected")
                    async with self._lock:
                        await conn.execute(_NOTIFY_MANY, self.channel, [p for p, _ in batch])
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("cluster: %d notices not announced (%s)", len(batch), exc)
                finally:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_result(None)

    async def live_nodes(self) -> set[str] | None:
        """Ids of the nodes that hold a session on the database; None when unknown."""
        conn = self._conn
        if conn is None:
            return None
        async with self._lock:
            # this database's sessions only: another deployment's node1 is not ours
            rows = await conn.fetch(
                "SELECT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE $1", "wte-node:%")
        return {n for r in rows if (n := node_of_application(r["application_name"])) is not None}
