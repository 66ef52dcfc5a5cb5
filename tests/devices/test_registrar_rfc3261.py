"""Registrar: RFC 3261 section 10.3, RFC 5626/5627 instance replacement, RFC 3581 source."""

from __future__ import annotations

import email.utils

import pytest
from devices_helpers import REALM, register

from devices.accounts import make_account
from devices.location import ChangeKind, LocationService
from devices.registrar import Registrar, Source

NOW = 1_800_000_000.0
ACCOUNT = make_account("501410", REALM, "pw", "acme:501410")
UDP = Source("udp", "203.0.113.5", 40123)
TCP = Source("tcp", "203.0.113.5", 50000, conn_id=42)


def reg(**kw: int) -> Registrar:
    opts = {"min_expires": 60, "max_expires": 3600, "default_expires": 1800, "max_contacts": 3}
    opts.update(kw)
    return Registrar(LocationService(), **opts)


def contacts_of(outcome) -> list[str]:  # type: ignore[no-untyped-def]
    return [v for n, v in outcome.headers if n == "Contact"]


def test_add_binding_lists_it_with_remaining_expiry_and_date() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:501410@10.0.0.5:5060>"], expires=600), ACCOUNT, UDP, NOW)
    assert (out.status, out.reason) == (200, "OK")
    assert contacts_of(out) == ["<sip:501410@10.0.0.5:5060>;expires=600"]
    date = dict(out.headers)["Date"]
    assert date.endswith("GMT") and email.utils.parsedate_to_datetime(date).timestamp() == NOW
    assert [c.kind for c in out.changes] == [ChangeKind.UPSERT]
    b = out.changes[0].binding
    assert (b.aor, b.contact, b.expires_at, b.call_id, b.cseq) == (
        "acme:501410", "sip:501410@10.0.0.5:5060", NOW + 600, "cid-1@phone", 1)
    # RFC 3581: the binding remembers where the REGISTER came from
    assert (b.transport, b.source_host, b.source_port, b.conn_id) == ("udp", "203.0.113.5", 40123, None)
    assert b.user_agent == "TestPhone/1.0"
    # applied in memory at once
    assert r.location.lookup("acme:501410", NOW) == [b]
    # later responses show the time left
    q = r.process(register(cseq=2), ACCOUNT, UDP, NOW + 100)
    assert contacts_of(q) == ["<sip:501410@10.0.0.5:5060>;expires=500"] and q.changes == ()


def test_tcp_binding_keeps_connection_id() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:501410@10.0.0.5;transport=tcp>"]), ACCOUNT, TCP, NOW)
    assert out.changes[0].binding.conn_id == 42 and out.changes[0].binding.transport == "tcp"


def test_default_expires_and_cap_at_max() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:a@10.0.0.5>", "<sip:b@10.0.0.5>;expires=99999"]),
                    ACCOUNT, UDP, NOW)
    assert sorted(contacts_of(out)) == ["<sip:a@10.0.0.5>;expires=1800", "<sip:b@10.0.0.5>;expires=3600"]


def test_contact_expires_parameter_wins_over_header() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:a@10.0.0.5>;expires=120"], expires=900), ACCOUNT, UDP, NOW)
    assert contacts_of(out) == ["<sip:a@10.0.0.5>;expires=120"]


@pytest.mark.parametrize(("contact", "expires"), [("<sip:a@10.0.0.5>", 30), ("<sip:a@10.0.0.5>;expires=1", 3600)])
def test_423_interval_too_brief_with_min_expires(contact: str, expires: int) -> None:
    r = reg()
    out = r.process(register(contacts=[contact], expires=expires), ACCOUNT, UDP, NOW)
    assert (out.status, out.reason) == (423, "Interval Too Brief")
    assert dict(out.headers)["Min-Expires"] == "60" and out.changes == ()
    assert len(r.location) == 0


def test_refresh_updates_and_zero_removes() -> None:
    r = reg()
    r.process(register(contacts=["<sip:a@10.0.0.5>"], expires=600), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["<sip:a@10.0.0.5>"], expires=900, cseq=2), ACCOUNT, UDP, NOW + 300)
    assert contacts_of(out) == ["<sip:a@10.0.0.5>;expires=900"] and len(r.location) == 1
    gone = r.process(register(contacts=["<sip:a@10.0.0.5>;expires=0"], cseq=3), ACCOUNT, UDP, NOW + 301)
    assert gone.status == 200 and contacts_of(gone) == []
    assert [c.kind for c in gone.changes] == [ChangeKind.DELETE] and len(r.location) == 0
    # removing a binding that does not exist is not an error and changes nothing
    again = r.process(register(contacts=["<sip:a@10.0.0.5>"], expires=0, cseq=4), ACCOUNT, UDP, NOW + 302)
    assert again.status == 200 and again.changes == ()


def test_star_with_expires_zero_removes_all() -> None:
    r = reg()
    r.process(register(contacts=["<sip:a@10.0.0.5>", "<sip:b@10.0.0.6>"]), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["*"], expires=0, call_id="other"), ACCOUNT, UDP, NOW + 1)
    assert out.status == 200 and contacts_of(out) == [] and len(out.changes) == 2
    assert r.location.lookup("acme:501410", NOW + 1) == []


@pytest.mark.parametrize("kw", [{"expires": 60}, {}])
def test_star_without_expires_zero_is_400(kw: dict[str, int]) -> None:
    r = reg()
    r.process(register(contacts=["<sip:a@10.0.0.5>"]), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["*"], call_id="x", **kw), ACCOUNT, UDP, NOW)
    assert out.status == 400 and out.changes == () and len(r.location) == 1


def test_star_mixed_with_contacts_is_400() -> None:
    out = reg().process(register(contacts=["*", "<sip:a@10.0.0.5>"], expires=0), ACCOUNT, UDP, NOW)
    assert out.status == 400


def test_star_with_same_call_id_and_old_cseq_fails() -> None:
    r = reg()
    r.process(register(contacts=["<sip:a@10.0.0.5>"], cseq=5), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["*"], expires=0, cseq=5), ACCOUNT, UDP, NOW)
    assert out.status == 500 and len(r.location) == 1


@pytest.mark.parametrize("cseq", [3, 4])
def test_same_call_id_with_cseq_not_higher_aborts_whole_request(cseq: int) -> None:
    r = reg()
    r.process(register(contacts=["<sip:a@10.0.0.5>"], cseq=4, expires=600), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["<sip:b@10.0.0.6>", "<sip:a@10.0.0.5>"], cseq=cseq,
                             expires=0), ACCOUNT, UDP, NOW + 1)
    assert out.status == 500 and out.changes == ()
    assert [b.contact for b in r.location.lookup("acme:501410", NOW + 1)] == ["sip:a@10.0.0.5"]


def test_other_call_id_updates_whatever_the_cseq() -> None:
    r = reg()
    r.process(register(contacts=["<sip:a@10.0.0.5>"], cseq=100, expires=600), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["<sip:a@10.0.0.5>"], call_id="rebooted", cseq=1, expires=900),
                    ACCOUNT, UDP, NOW + 1)
    assert out.status == 200 and contacts_of(out) == ["<sip:a@10.0.0.5>;expires=900"]
    assert r.location.lookup("acme:501410", NOW + 1)[0].call_id == "rebooted"


def test_query_without_contact_changes_nothing() -> None:
    r = reg()
    out = r.process(register(), ACCOUNT, UDP, NOW)
    assert out.status == 200 and contacts_of(out) == [] and "Date" in dict(out.headers)


def test_max_contacts_replaces_the_oldest() -> None:
    r = reg(max_contacts=2)
    r.process(register(contacts=["<sip:a@h1>"], call_id="1"), ACCOUNT, UDP, NOW)
    r.process(register(contacts=["<sip:b@h2>"], call_id="2"), ACCOUNT, UDP, NOW + 1)
    out = r.process(register(contacts=["<sip:c@h3>"], call_id="3"), ACCOUNT, UDP, NOW + 2)
    assert out.status == 200
    assert sorted(b.contact for b in r.location.lookup("acme:501410", NOW + 2)) == ["sip:b@h2", "sip:c@h3"]
    assert [(c.kind, c.binding.contact) for c in out.changes] == [
        (ChangeKind.UPSERT, "sip:c@h3"), (ChangeKind.DELETE, "sip:a@h1")]


def test_refreshing_keeps_a_binding_young() -> None:
    r = reg(max_contacts=2)
    r.process(register(contacts=["<sip:a@h1>"], call_id="1"), ACCOUNT, UDP, NOW)
    r.process(register(contacts=["<sip:b@h2>"], call_id="2"), ACCOUNT, UDP, NOW + 1)
    r.process(register(contacts=["<sip:a@h1>"], call_id="1", cseq=2), ACCOUNT, UDP, NOW + 2)
    r.process(register(contacts=["<sip:c@h3>"], call_id="3"), ACCOUNT, UDP, NOW + 3)
    assert sorted(b.contact for b in r.location.lookup("acme:501410", NOW + 3)) == ["sip:a@h1", "sip:c@h3"]


def test_device_limit_refuses_another_device_with_403_and_a_warning() -> None:
    r = reg(max_contacts=5)
    one = make_account("501420", REALM, "pw", "acme:501420", max_contacts=1)  # Workspace
    first = r.process(register(user="501420", contacts=["<sip:a@h1>"], call_id="1"), one, UDP, NOW)
    assert first.status == 200
    out = r.process(register(user="501420", contacts=["<sip:b@h2>"], call_id="2"), one, UDP, NOW + 1)
    assert (out.status, out.changes) == (403, ())
    warning = dict(out.headers)["Warning"]
    assert warning.startswith("399 ") and "device limit" in warning and "1 device" in warning
    # the first device was not replaced, in memory or in the changes to store
    assert [b.contact for b in r.location.lookup("acme:501420", NOW + 1)] == ["sip:a@h1"]
    # once the first device unregisters, the second one may register
    bye = r.process(register(user="501420", contacts=["<sip:a@h1>"], call_id="1", cseq=2,
                             expires=0), one, UDP, NOW + 2)
    assert bye.status == 200
    again = r.process(register(user="501420", contacts=["<sip:b@h2>"], call_id="2", cseq=2),
                      one, UDP, NOW + 3)
    assert again.status == 200
    assert [b.contact for b in r.location.lookup("acme:501420", NOW + 3)] == ["sip:b@h2"]


@pytest.mark.parametrize(("second", "call_id", "bindings"), [
    ("<sip:a@h1>", "rebooted", 1),  # same Contact, new Call-ID: the same device rebooted
    ('<sip:a@h9>;+sip.instance="<urn:uuid:1>"', "moved", 1),  # same instance, new address
    ("<sip:a@h2;transport=tcp>", "1", 2),  # same Call-ID: one UA, a second contact
])
def test_the_same_device_is_not_another_device(second: str, call_id: str, bindings: int) -> None:
    r = reg()
    one = make_account("501420", REALM, "pw", "acme:501420", max_contacts=1)
    inst = ';+sip.instance="<urn:uuid:1>"' if "instance" in second else ""
    assert r.process(register(user="501420", contacts=[f"<sip:a@h1>{inst}"], call_id="1"),
                     one, UDP, NOW).status == 200
    out = r.process(register(user="501420", contacts=[second], call_id=call_id, cseq=5),
                    one, UDP, NOW + 1)
    assert out.status == 200, out.headers
    assert len(r.location.lookup("acme:501420", NOW + 1)) == bindings


def test_a_mac_in_the_user_agent_identifies_the_device() -> None:
    r = reg()
    one = make_account("501420", REALM, "pw", "acme:501420", max_contacts=1)
    ua = ["User-Agent: Cisco/SPA504G-7.6.2c (0011223344AA)(CCQ1)"]
    req1 = register(user="501420", contacts=["<sip:a@10.0.0.7:5060>"], call_id="1")
    req1 = req1.replace(headers=req1.headers.replace("User-Agent", ua[0].split(": ", 1)[1]))
    assert r.process(req1, one, UDP, NOW).status == 200
    req2 = register(user="501420", contacts=["<sip:a@10.0.0.7:5062>"], call_id="2")
    req2 = req2.replace(headers=req2.headers.replace("User-Agent", ua[0].split(": ", 1)[1]))
    assert r.process(req2, one, UDP, NOW + 1).status == 200
    other = register(user="501420", contacts=["<sip:a@10.0.0.8:5060>"], call_id="3")
    assert r.process(other, one, UDP, NOW + 2).status == 403


def test_device_limit_ignores_expired_bindings_and_lets_refreshes_through() -> None:
    r = reg()
    one = make_account("501420", REALM, "pw", "acme:501420", max_contacts=1)
    r.process(register(user="501420", contacts=["<sip:a@h1>"], call_id="1", expires=60), one, UDP, NOW)
    out = r.process(register(user="501420", contacts=["<sip:b@h2>"], call_id="2"), one, UDP, NOW + 61)
    assert out.status == 200
    # two devices registered while the limit was 2; the limit drops to 1 (a reload): both
    # may still refresh, a third is refused
    two = make_account("501420", REALM, "pw", "acme:501420", max_contacts=2)
    r2 = reg()
    r2.process(register(user="501420", contacts=["<sip:a@h1>"], call_id="1"), two, UDP, NOW)
    r2.process(register(user="501420", contacts=["<sip:b@h2>"], call_id="2"), two, UDP, NOW)
    refresh = r2.process(register(user="501420", contacts=["<sip:a@h1>"], call_id="1", cseq=2),
                         one, UDP, NOW + 10)
    assert refresh.status == 200
    third = r2.process(register(user="501420", contacts=["<sip:c@h3>"], call_id="3"), one, UDP, NOW + 11)
    assert third.status == 403


def test_contacts_per_device_are_bounded() -> None:
    r = reg()
    one = make_account("501420", REALM, "pw", "acme:501420", max_contacts=1)
    many = [f"<sip:a@h{i}>" for i in range(5)]
    out = r.process(register(user="501420", contacts=many, call_id="1"), one, UDP, NOW)
    assert out.status == 403 and "too many contacts" in dict(out.headers)["Warning"]
    assert len(r.location) == 0


def test_q_values_order_the_listing_and_bad_q_is_400() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:a@h1>;q=0.1", "<sip:b@h2>;q=0.9", "<sip:c@h3>"]),
                    ACCOUNT, UDP, NOW)
    assert contacts_of(out) == ["<sip:c@h3>;expires=1800", "<sip:b@h2>;expires=1800;q=0.9",
                                "<sip:a@h1>;expires=1800;q=0.1"]
    assert [b.q for b in r.location.lookup("acme:501410", NOW)] == [1.0, 0.9, 0.1]
    for bad in ("1.5", "abc", "0.1234", "2"):
        assert r.process(register(contacts=[f"<sip:d@h4>;q={bad}"], call_id=bad), ACCOUNT, UDP, NOW).status == 400


def test_instance_replaces_binding_even_when_contact_uri_changes() -> None:
    r = reg()
    inst = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-0004f2aabbcc>"'
    r.process(register(contacts=[f"<sip:501410@10.1.0.1:5060>;{inst}"], call_id="h1"),
              ACCOUNT, Source("udp", "10.1.0.1", 5060), NOW)
    # the DECT handset roams to another base: new contact URI, new source, new Call-ID
    out = r.process(register(contacts=[f"<sip:501410@10.2.0.1:5060>;{inst}"], call_id="h2"),
                    ACCOUNT, Source("udp", "10.2.0.1", 5060), NOW + 5)
    current = r.location.lookup("acme:501410", NOW + 5)
    assert [(b.contact, b.source_host) for b in current] == [("sip:501410@10.2.0.1:5060", "10.2.0.1")]
    assert contacts_of(out) == [f"<sip:501410@10.2.0.1:5060>;expires=1800;{inst}"]
    assert current[0].instance_id == "<urn:uuid:00000000-0000-1000-8000-0004f2aabbcc>"


def test_outbound_reg_id_flows_coexist() -> None:
    r = reg()
    inst = '+sip.instance="<urn:uuid:1>"'
    r.process(register(contacts=[f"<sip:u@h1>;{inst};reg-id=1"], call_id="f1"), ACCOUNT, UDP, NOW)
    r.process(register(contacts=[f"<sip:u@h1>;{inst};reg-id=2"], call_id="f2"), ACCOUNT, TCP, NOW)
    assert sorted(b.reg_id or 0 for b in r.location.lookup("acme:501410", NOW)) == [1, 2]


def test_to_user_must_be_the_authenticated_account() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:a@h1>"], to_user="501411"), ACCOUNT, UDP, NOW)
    assert out.status == 403 and out.changes == () and len(r.location) == 0


def test_unsupported_required_extension_is_420() -> None:
    out = reg().process(register(contacts=["<sip:a@h1>"], extra=["Require: foo, path"]), ACCOUNT, UDP, NOW)
    assert out.status == 420 and dict(out.headers)["Unsupported"] == "foo"


def test_path_is_stored() -> None:
    r = reg()
    out = r.process(register(contacts=["<sip:a@h1>"], extra=["Path: <sip:edge1.example;lr>",
                                                              "Supported: path"]), ACCOUNT, UDP, NOW)
    assert out.changes[0].binding.path == ("<sip:edge1.example;lr>",)


@pytest.mark.parametrize("bad", ["<sip:a@h1>;expires=soon", "<tel:+33562070410>", "<sip:a@h1>;reg-id=x;+sip.instance=\"<urn:x>\""])
def test_bad_contacts_are_400(bad: str) -> None:
    assert reg().process(register(contacts=[bad]), ACCOUNT, UDP, NOW).status == 400


def test_bad_expires_header_is_400() -> None:
    req = register(contacts=["<sip:a@h1>"], expires=60)  # the parser already refuses it
    req = req.replace(headers=req.headers.replace("Expires", "never"))
    assert reg().process(req, ACCOUNT, UDP, NOW).status == 400


def test_rollback_restores_memory_after_persist_failure() -> None:
    r = reg(max_contacts=1)
    r.process(register(contacts=["<sip:a@h1>"], call_id="1", expires=600), ACCOUNT, UDP, NOW)
    before = r.location.lookup("acme:501410", NOW)
    out = r.process(register(contacts=["<sip:b@h2>"], call_id="2"), ACCOUNT, UDP, NOW + 1)
    assert [b.contact for b in r.location.lookup("acme:501410", NOW + 1)] == ["sip:b@h2"]
    r.rollback(out)  # e.g. the database commit failed: answer 500
    assert r.location.lookup("acme:501410", NOW + 1) == before


def test_expired_bindings_are_not_listed_and_do_not_count() -> None:
    r = reg(max_contacts=1)
    r.process(register(contacts=["<sip:a@h1>"], call_id="1", expires=60), ACCOUNT, UDP, NOW)
    out = r.process(register(contacts=["<sip:b@h2>"], call_id="2"), ACCOUNT, UDP, NOW + 61)
    assert contacts_of(out) == ["<sip:b@h2>;expires=1800"]
    assert all(c.kind is ChangeKind.UPSERT for c in out.changes)


def test_response_builder() -> None:
    r = reg()
    req = register(contacts=["<sip:a@h1>"])
    resp = r.process(req, ACCOUNT, UDP, NOW).response(req, to_tag="t1")
    assert resp.status == 200 and resp.headers.get("To", "").endswith(";tag=t1")
    assert resp.headers.get("Contact") == "<sip:a@h1>;expires=1800"
