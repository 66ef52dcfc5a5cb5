"""The pure part of the cluster: notices, what they reload, dead nodes, binding replacement."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.location import Binding, ChangeKind
from switch.cluster.node import replacement, valid_node_id
from switch.cluster.notices import (
    CHANNEL,
    MAX_KEY,
    MAX_PAYLOAD,
    Action,
    Kind,
    Notice,
    NoticeError,
    action_for,
    channel_for,
    dead_nodes,
    decode,
    newer_wins,
    node_application_name,
    node_of_application,
)


@given(node=st.text(min_size=1, max_size=40), kind=st.sampled_from(list(Kind)),
       key=st.text(max_size=200))
def test_notice_round_trips(node: str, kind: Kind, key: str) -> None:
    notice = Notice(node, kind, key)
    assert decode(notice.encode()) == notice


@pytest.mark.parametrize("payload", [
    "", "not json", "[]", '{"v":2,"n":"a","k":"plan","key":""}',
    '{"v":1,"n":"a","k":"reboot","key":""}', '{"v":1,"n":3,"k":"plan"}',
    '{"v":1,"n":"a","k":"binding","key":7}',
])
def test_bad_payloads_are_refused(payload: str) -> None:
    with pytest.raises(NoticeError):
        decode(payload)


def test_a_binding_notice_carries_its_changes_unless_they_do_not_fit() -> None:
    body = [{"op": "u", "row": {"aor": "acme:501410", "contact": "sip:a@h"}}]
    sent = decode(Notice("node1", Kind.BINDING, "acme:501410", body).encode())
    assert sent.body == body and action_for(sent, "node2") is Action.APPLY_BINDINGS
    big = [{"op": "u", "row": {"contact": "x" * (MAX_PAYLOAD + 1)}}]
    trimmed = decode(Notice("node1", Kind.BINDING, "acme:501410", big).encode())
    assert trimmed.body is None and action_for(trimmed, "node2") is Action.RELOAD_AOR
    with pytest.raises(NoticeError):
        decode('{"v":1,"n":"a","k":"binding","key":"x","b":[{"op":"z","row":{}}]}')


def test_newer_registration_wins_when_notices_cross() -> None:
    assert newer_wins(None, 10.0, delete=False)  # new here
    assert not newer_wins(None, 10.0, delete=True)  # nothing to remove
    assert newer_wins(10.0, 11.0, delete=False) and not newer_wins(11.0, 10.0, delete=False)
    assert newer_wins(10.0, 10.0, delete=True)  # removes the registration it names
    assert not newer_wins(12.0, 10.0, delete=True)  # re-registered since: kept


def test_a_key_too_long_for_notify_is_refused_at_the_sender() -> None:
    with pytest.raises(NoticeError):
        Notice("node1", Kind.BINDING, "x" * (MAX_KEY + 1)).encode()


def test_own_notices_are_ignored_and_each_kind_has_its_reload() -> None:
    assert action_for(Notice("node1", Kind.BINDING, "acme:501410"), "node1") is None
    expected = {Kind.BINDING: Action.RELOAD_AOR, Kind.PLAN: Action.RELOAD_PLAN,
                Kind.SETTINGS: Action.RELOAD_SETTINGS, Kind.SCHEDULE: Action.RELOAD_SCHEDULES,
                Kind.MWI: Action.REFRESH_LAMP}
    for kind, action in expected.items():
        assert action_for(Notice("node2", kind, "k"), "node1") is action


def test_channel_per_schema() -> None:
    assert channel_for(None) == CHANNEL
    assert channel_for("tenant_a") != channel_for("tenant_b")
    assert len(channel_for("s" * 100)) <= 63


def test_node_identity_in_application_name() -> None:
    name = node_application_name("node7")
    assert node_of_application(name) == "node7"
    assert node_of_application("psql") is None
    assert dead_nodes({"node1", "node2", "node3"}, {"node1", "node3"}) == {"node2"}
    assert valid_node_id("node-1.a_b") and not valid_node_id("") and not valid_node_id("a b")
    assert not valid_node_id("x" * 49) and not valid_node_id("-leading")


def _b(contact: str, *, conn_id: int | None = None, cseq: int = 1) -> Binding:
    return Binding(aor="acme:501410", contact=contact, expires_at=2000.0, q=1.0, call_id="c",
                   cseq=cseq, instance_id=None, reg_id=None, transport="udp",
                   source_host="127.0.0.1", source_port=5060, conn_id=conn_id, user_agent="ua",
                   registered_at=1000.0, path=("<sip:127.0.0.1:5060;lr>",))


def test_replacement_makes_memory_the_database() -> None:
    kept, gone, changed = _b("sip:a@h"), _b("sip:b@h"), _b("sip:c@h")
    fresh = [kept, _b("sip:c@h", cseq=2), _b("sip:d@h")]
    changes = replacement([kept, gone, changed], fresh)
    assert [(c.kind, c.binding.contact, c.binding.cseq) for c in changes] == [
        (ChangeKind.UPSERT, "sip:c@h", 2), (ChangeKind.UPSERT, "sip:d@h", 1),
        (ChangeKind.DELETE, "sip:b@h", 1)]


def test_replacement_keeps_a_local_connection() -> None:
    mine = _b("sip:a@h", conn_id=42)  # the phone is connected to this node over TCP
    assert replacement([mine], [_b("sip:a@h")]) == []


def test_a_peers_changes_apply_without_the_database() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from devices.location import LocationService
    from switch.cluster.node import ClusterNode
    from switch.storage.bindings import binding_to_row

    loc = LocationService()
    regs = SimpleNamespace(location=loc, committed=None)
    none = cast(Any, None)
    node = ClusterNode("postgresql+asyncpg://u@127.0.0.1/db", "node2", engine=none,
                       registrations=regs, plan=none, settings=none, schedules=none,
                       mailboxes=none, lamps=none, records=none)
    first = _b("sip:a@h")
    newer = replace(first, registered_at=1500.0, cseq=2)

    def notice(op: str, b: Binding) -> Notice:
        return Notice("node1", Kind.BINDING, b.aor, [{"op": op, "row": binding_to_row(b)}])

    node.apply_remote([notice("u", newer)])
    assert loc.get(newer.aor, newer.key) == newer
    node.apply_remote([notice("u", first)])  # an older notice arriving late changes nothing
    assert loc.get(newer.aor, newer.key) == newer
    node.apply_remote([notice("d", first)])  # nor does the removal of the older one
    assert loc.get(newer.aor, newer.key) == newer
    node.apply_remote([notice("d", newer)])
    assert loc.lookup(newer.aor, 0.0) == []
