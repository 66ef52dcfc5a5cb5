"""Change notices between the nodes of a cluster: their wire format and what they reload.

Pure: no I/O. A node that changes shared state (a binding, the dialplan, a user's settings,
a forced schedule mode, a mailbox's message count) commits it to PostgreSQL, then sends a
`Notice` on one channel with `NOTIFY`; every other node receives it and reloads just that
piece from the database (`action_for`). The database stays the truth: a lost notice costs
freshness, never data, and a node that reconnects to the channel reloads everything
(`RELOAD_ALL`) because it may have missed notices.

A binding notice may carry the committed changes themselves (`body`, the rows as stored):
a peer then applies them without reading the database, the newer registration winning
(`newer_wins`), which keeps a cluster's REGISTER rate close to one node's. A notice whose
body would not fit is sent without it, and peers reload the AoR.

Wire format: compact JSON, `{"v":1,"n":node,"k":kind,"key":key,"b":body}`; PostgreSQL
limits a payload to 8000 bytes (`MAX_PAYLOAD` leaves room), and keys longer than `MAX_KEY`
are refused at the sender (an AoR is far shorter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

CHANNEL = "wte_cluster"  # one channel per deployment: the kind says what changed
VERSION = 1
MAX_KEY = 1024
MAX_PAYLOAD = 7900
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
    APPLY_BINDINGS = "apply_bindings"  # the notice carries the changes: no database read
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
# (each with the key "": everything of its kind)
RELOAD_ALL = (Action.RELOAD_AOR, Action.RELOAD_SETTINGS, Action.RELOAD_SCHEDULES,
              Action.REFRESH_LAMP)


Body = list[dict[str, Any]]  # BINDING: [{"op": "u" | "d", "row": {column: value}}]


@dataclass(frozen=True, slots=True)
class Notice:
    node: str  # the sender's node id
    kind: Kind
    key: str = ""
    body: Body | None = field(default=None, compare=False)

    def encode(self) -> str:
        """The payload; with a body that would not fit, the payload without it."""
        if len(self.key) > MAX_KEY:
            raise NoticeError(f"notice key longer than {MAX_KEY} characters")
        data: dict[str, Any] = {"v": VERSION, "n": self.node, "k": self.kind.value,
                                "key": self.key}
        if self.body is not None:
            text = json.dumps({**data, "b": self.body}, separators=(",", ":"))
            if len(text.encode()) <= MAX_PAYLOAD:
                return text
        return json.dumps(data, separators=(",", ":"))


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
    body = data.get("b")
    if body is not None and not (isinstance(body, list) and all(
            isinstance(c, dict) and c.get("op") in ("u", "d") and isinstance(c.get("row"), dict)
            for c in body)):
        raise NoticeError("a body is a list of {op, row}")
    try:
        return Notice(node, Kind(kind), key, body)
    except ValueError:
        raise NoticeError(f"unknown kind {kind!r}") from None


def action_for(notice: Notice, own_node: str) -> Action | None:
    """What `own_node` does on `notice`: nothing for its own (it changed memory first)."""
    if notice.node == own_node:
        return None
    if notice.kind is Kind.BINDING and notice.body is not None:
        return Action.APPLY_BINDINGS
    return _ACTIONS[notice.kind]


def newer_wins(current_registered_at: float | None, incoming_registered_at: float,
               delete: bool) -> bool:
    """Whether a peer's change applies over what this node holds for the same binding:
    notices of two nodes may cross, so an older registration never replaces a newer one,
    and a removal applies only to the registration it removed (or an older one)."""
    if current_registered_at is None:
        return not delete
    return current_registered_at <= incoming_registered_at


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
