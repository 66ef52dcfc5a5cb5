"""LocationService: ordering, sweep, load, memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devices.location import Binding, BindingChange, ChangeKind, LocationService

NOW = 1_800_000_000.0


def b(contact: str, *, aor: str = "acme:501410", expires_at: float = NOW + 100, q: float = 1.0,
      registered_at: float = NOW, instance: str | None = None, conn_id: int | None = None) -> Binding:
    return Binding(aor, contact, expires_at, q, "cid", 1, instance, None, "udp", "192.0.2.10",
                   5060, conn_id, "UA", registered_at)


def up(x: Binding) -> BindingChange:
    return BindingChange(ChangeKind.UPSERT, x)


def test_lookup_orders_by_q_then_most_recent_and_hides_expired() -> None:
    loc = LocationService()
    loc.apply([up(b("sip:a@h", q=0.5)), up(b("sip:b@h", q=1.0, registered_at=NOW - 10)),
               up(b("sip:c@h", q=1.0, registered_at=NOW)), up(b("sip:d@h", expires_at=NOW - 1))])
    assert [x.contact for x in loc.lookup("acme:501410", NOW)] == ["sip:c@h", "sip:b@h", "sip:a@h"]
    assert loc.lookup("acme:other", NOW) == []
    assert len(loc) == 4


def test_upsert_replaces_and_delete_removes() -> None:
    loc = LocationService()
    loc.apply([up(b("sip:a@h")), up(b("sip:a@h", expires_at=NOW + 500))])
    assert len(loc) == 1 and loc.lookup("acme:501410", NOW)[0].expires_at == NOW + 500
    loc.apply([BindingChange(ChangeKind.DELETE, b("sip:a@h"))])
    assert len(loc) == 0 and loc.lookup("acme:501410", NOW) == []


def test_sweep_removes_expired_only_once_and_ignores_refreshed() -> None:
    loc = LocationService()
    loc.apply([up(b("sip:a@h", expires_at=NOW + 10)), up(b("sip:b@h", expires_at=NOW + 10))])
    loc.apply([up(b("sip:b@h", expires_at=NOW + 1000))])  # refreshed: old heap entry is stale
    assert loc.sweep(NOW + 5) == []
    removed = loc.sweep(NOW + 10)
    assert [x.contact for x in removed] == ["sip:a@h"]
    assert loc.sweep(NOW + 20) == []
    assert len(loc) == 1
    assert [x.contact for x in loc.sweep(NOW + 1000)] == ["sip:b@h"]
    assert len(loc) == 0 and loc.next_expiry() is None


def test_load_drops_connection_ids_by_default() -> None:
    loc = LocationService()
    assert loc.load([b("sip:a@h", conn_id=7)]) == 1
    assert loc.lookup("acme:501410", NOW)[0].conn_id is None
    loc2 = LocationService()
    loc2.load([b("sip:a@h", conn_id=7)], drop_connections=False)
    assert loc2.lookup("acme:501410", NOW)[0].conn_id == 7


def test_instance_key_ignores_contact_uri() -> None:
    x = b("sip:a@base1", instance="<urn:uuid:1>")
    y = replace(x, contact="sip:a@base2")
    assert x.key == y.key != b("sip:a@base1").key


def test_strings_are_shared() -> None:
    x = b("sip:a@h", aor="".join(["acme:", "501410"]))
    y = b("sip:b@h", aor="acme:" + "501410")
    assert x.aor is y.aor and x.user_agent is y.user_agent


def bound(contact: str, transport: str = "udp", host: str = "203.0.113.5", port: int = 40123,
          conn_id: int | None = None, path: tuple[str, ...] = ()) -> Binding:
    return Binding("acme:501410", contact, NOW + 100, 1.0, "cid", 1, None, None, transport,
                   host, port, conn_id, "UA", NOW, path)


@pytest.mark.parametrize(("binding", "expected", "why"), [
    # same address, another port: a gateway or phone sending from one port, listening on another
    (bound("sip:501410@203.0.113.5:5060"), ("UDP", "203.0.113.5", 5060, None), "contact"),
    (bound("sip:501410@203.0.113.5"), ("UDP", "203.0.113.5", 5060, None), "default port"),
    (bound("sips:501410@203.0.113.5"), ("UDP", "203.0.113.5", 5061, None), "sips default"),
    # a LAN phone without NAT: private contact equal to the source
    (bound("sip:u@10.0.0.5:5062", host="10.0.0.5", port=5062), ("UDP", "10.0.0.5", 5062, None), "lan"),
    # NAT: a private contact seen from a public source
    (bound("sip:u@192.168.1.10:5060"), ("UDP", "203.0.113.5", 40123, None), "private contact"),
    (bound("sip:u@100.64.1.10:5060"), ("UDP", "203.0.113.5", 40123, None), "cgnat contact"),
    # a public contact the packets did not come from (double NAT, stale STUN)
    (bound("sip:u@198.51.100.7:5060"), ("UDP", "203.0.113.5", 40123, None), "other public"),
    # connection-oriented: the flow, with its connection
    (bound("sip:u@203.0.113.5:5060;transport=tcp", "tcp", conn_id=7),
     ("TCP", "203.0.113.5", 40123, 7), "tcp flow"),
    (bound("sip:u@203.0.113.5:5061;transport=tls", "tls", conn_id=8),
     ("TLS", "203.0.113.5", 40123, 8), "tls flow"),
    (bound("sip:u@df7jal23ls0d.invalid;transport=ws", "ws", conn_id=9),
     ("WS", "203.0.113.5", 40123, 9), "websocket"),
    # through an edge proxy (Path), a host name, or another transport asked in the contact
    (bound("sip:u@203.0.113.5:5060", path=("<sip:edge.example;lr>",)),
     ("UDP", "203.0.113.5", 40123, None), "path"),
    (bound("sip:u@phone.example.com:5060"), ("UDP", "203.0.113.5", 40123, None), "hostname"),
    (bound("sip:u@203.0.113.5:5060;transport=tcp"), ("UDP", "203.0.113.5", 40123, None), "transport"),
    (bound("sip:u@[2001:db8::5]:5070", host="2001:db8::5"), ("UDP", "2001:db8::5", 5070, None), "ipv6"),
])
def test_destination_is_the_contact_unless_nat_is_detected(
        binding: Binding, expected: tuple[str, str, int, int | None], why: str) -> None:
    assert binding.destination() == expected, why
