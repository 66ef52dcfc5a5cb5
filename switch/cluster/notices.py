"""Change notices between the nodes of a cluster: their wire format and what they reload.

Pure: no I/O. A node that changes shared state (a binding, the dialplan, a user's settings,
a forced schedule mode, a mailbox's message count) commits it to PostgreSQL, then sends a
`Notice` on one channel with `NOTIFY`; every other node receives it and reloads just that
piece from the database (`action_for`). The database stays the truth: a lost notice costs
freshness, never data, and a node that reconnects to the channel reloads everything
(`RELOAD_ALL`) because it may have missed notices.

Wire format: compact JSON, `{"v":1,"n":node,"k":kind,"key":key}`; PostgreSQL limits a
payload to 8000 bytes, so keys longer than `MAX_KEY` are refused at the sender (an AoR is
far shorter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

CHANNEL = "wte_cluster"  # one channel per deployment: the kind says what changed
VERSION = 1
MAX_KEY = 1024
NODE_APPLICATION_PREFIX = "wte-node:"  # application_name of a node's listening session


class NoticeError(ValueError):
    """A payload that is not a notice of this version (dropped and counted by the adapter)."""


class Kind(Enum):
    BINDING = "binding"  # key: the AoR whose bindings changed
    PLAN = "plan"  # key: "" (the dialplan file was reloaded: every node re-reads its own)
    SETTINGS = "settings"  # key: "customer:number"
    SCHEDULE = "schedule"  # key: "customer/schedule"
    MWI = "mwi"  # key: the mailbox's user "customer:number"


class Action(Enum):
    """What a node does on a notice (the adapter maps each to a service call)."""

    RELOAD_AOR = "reload_aor"
    RELOAD_PLAN = "reload_plan"
    RELOAD_SETTINGS = "reload_settings"
    RELOAD_SCHEDULES = "reload_schedules"
    REFRESH_LAMP = "refresh_lamp"


_ACTIONS = {
    Kind.BINDING: Action.RELOAD_AOR,
    Kind.PLAN: Action.RELOAD_PLAN,
    Kind.SETTINGS: Action.RELOAD_SETTINGS,
    Kind.SCHEDULE: Action.RELOAD_SCHEDULES,
    Kind.MWI: Action.REFRESH_LAMP,
}

# after (re)connecting to the channel: notices may have been missed, reload everything
RELOAD_ALL = (Action.RELOAD_AOR, Action.RELOAD_SETTINGS, Action.RELOAD_SCHEDULES)


@dataclass(frozen=True, slots=True)
class Notice:
    node: str  # the sender's node id
    kind: Kind
    key: str = ""

    def encode(self) -> str:
        if len(self.key) > MAX_KEY:
            raise NoticeError(f"notice key longer than {MAX_KEY} characters")
        return json.dumps({"v": VERSION, "n": self.node, "k": self.kind.value, "key": self.key},
                          separators=(",", ":"))


def channel_for(schema: str | None) -> str:
    """The channel of a deployment: NOTIFY reaches every session of the database, so two
    deployments in two schemas of one database (`?schema=` URLs) need two channels."""
    return CHANNEL if not schema else f"{CHANNEL}_{schema}"[:63]


def decode(payload: str) -> Notice:
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise NoticeError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise NoticeError("not a version 1 notice")
    node, kind, key = data.get("n"), data.get("k"), data.get("key", "")
    if not isinstance(node, str) or not isinstance(key, str) or not isinstance(kind, str):
        raise NoticeError("node, kind and key must be strings")
    try:
        return Notice(node, Kind(kind), key)
    except ValueError:
        raise NoticeError(f"unknown kind {kind!r}") from None


def action_for(notice: Notice, own_node: str) -> Action | None:
    """What `own_node` does on `notice`: nothing for its own (it changed memory first)."""
    if notice.node == own_node:
        return None
    return _ACTIONS[notice.kind]


def node_application_name(node: str) -> str:
    """The application_name a node's listening session carries: peers read liveness from
    pg_stat_activity (a node killed with -9 loses its session at once)."""
    return f"{NODE_APPLICATION_PREFIX}{node}"[:63]  # NAMEDATALEN - 1


def node_of_application(name: str) -> str | None:
    return name[len(NODE_APPLICATION_PREFIX):] if name.startswith(NODE_APPLICATION_PREFIX) else None


def dead_nodes(record_nodes: set[str], live: set[str]) -> set[str]:
    """Nodes that own open call records but have no session on the database: their calls
    ended with them (a surviving node closes the records, issue 22)."""
    return {n for n in record_nodes if n not in live}


NODE_FAILED_CAUSE = "abandoned: node failed"
