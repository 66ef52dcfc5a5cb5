"""The pure subscription core (issue 17): state machine, Expires negotiation, the table's
indexes, limits and expiry, and the NOTIFY bodies as wire text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from switch.sip import SipError
from switch.subscription import (
    DialogDirection,
    DialogInfo,
    DialogPhase,
    LimitExceeded,
    Party,
    PresenceSnapshot,
    Subscription,
    SubscriptionError,
    SubscriptionTable,
    SubState,
    TerminationReason,
    dialog_info_body,
    message_summary_body,
    negotiate_expires,
    pidf_body,
)
from switch.subscription.bodies import with_version
from switch.subscription.resources import Publication, UserActivity

NS = {"d": "urn:ietf:params:xml:ns:dialog-info", "p": "urn:ietf:params:xml:ns:pidf"}


def sub(sid: str = "s1", resource: str = "acme:501410", watcher: str = "acme:501412",
        source: str = "10.0.0.1", expires_at: float = 100.0, package: str = "dialog"
        ) -> Subscription:
    return Subscription(sid, package, resource, watcher, source, expires_at)


# -- state machine --

def test_pending_active_terminated_and_the_state_header() -> None:
    s = sub()
    assert s.state is SubState.PENDING
    assert s.state_header(40.0) == "pending;expires=60"
    s.authorize()
    assert s.state.value == "active" and s.state_header(40.4) == "active;expires=60"
    s.refresh(500.0)
    assert s.state_header(100.0) == "active;expires=400"
    s.terminate(TerminationReason.TIMEOUT)
    assert s.state.value == "terminated"
    assert s.state_header(100.0) == "terminated;reason=timeout"
    s.terminate(TerminationReason.DEACTIVATED)  # ending twice keeps the first reason
    assert s.state_header(100.0) == "terminated;reason=timeout"


def test_a_missing_transition_is_a_named_error() -> None:
    s = sub()
    s.terminate(TerminationReason.NORESOURCE)
    with pytest.raises(SubscriptionError) as err:
        s.refresh(200.0)
    assert err.value.status == 500
    with pytest.raises(SubscriptionError):
        s.authorize()


def test_versions_grow_by_one_per_document() -> None:
    s = sub()
    assert [s.next_version() for _ in range(3)] == [0, 1, 2]


# -- Expires (RFC 6665 4.2.1.1) --

@pytest.mark.parametrize(("asked", "granted"), [(None, 3600), (0, 0), (60, 60), (600, 600),
                                                (86400, 3600)])
def test_expires_negotiation(asked: int | None, granted: int) -> None:
    assert negotiate_expires(asked, default=3600, minimum=60, maximum=3600) == granted


def test_too_brief_is_423_with_min_expires() -> None:
    with pytest.raises(SipError) as err:
        negotiate_expires(30, default=3600, minimum=60, maximum=3600)
    assert err.value.status == 423
    assert ("Min-Expires", "60") in err.value.headers
    with pytest.raises(SipError) as bad:
        negotiate_expires(-1, default=3600, minimum=60, maximum=3600)
    assert bad.value.status == 400


# -- the table --

def test_fan_out_index_limits_and_removal() -> None:
    table = SubscriptionTable(max_per_watcher=2, max_per_source=3)
    table.add(sub("a"))
    table.add(sub("b", package="presence"))
    table.add(sub("c", watcher="acme:501411", source="10.0.0.1"))
    assert {s.id for s in table.watchers("dialog", "acme:501410")} == {"a", "c"}
    assert [s.id for s in table.watchers("presence", "acme:501410")] == ["b"]
    assert table.watchers("dialog", "globex:501410") == []
    with pytest.raises(LimitExceeded) as per_user:
        table.check_limits("acme:501412", "10.0.0.9")
    assert per_user.value.status == 403
    with pytest.raises(LimitExceeded) as per_source:
        table.check_limits("acme:501499", "10.0.0.1")
    assert "per source" in dict(per_source.value.headers)["Warning"]
    table.check_limits("acme:501499", "10.0.0.9")  # neither limit reached
    assert table.remove("a") is not None and table.remove("a") is None
    table.check_limits("acme:501412", "10.0.0.1")  # one slot freed for both
    assert table.count_for_watcher("acme:501412") == 1 and len(table) == 2


def test_expiry_heap_follows_refreshes() -> None:
    table = SubscriptionTable(max_per_watcher=10, max_per_source=10)
    early, late = sub("early", expires_at=50.0), sub("late", expires_at=80.0)
    table.add(early)
    table.add(late)
    assert table.next_expiry() == 50.0
    early.expires_at = 200.0  # refreshed
    table.refreshed(early)
    assert table.next_expiry() == 80.0
    assert table.expired(79.9) == []
    assert [s.id for s in table.expired(80.0)] == ["late"]
    assert table.next_expiry() == 200.0
    assert [s.id for s in table.expired(1000.0)] == ["early"] and len(table) == 0


# -- bodies --

def test_dialog_info_wire_text_and_shared_parts() -> None:
    ringing = DialogInfo("abc@h", DialogDirection.RECIPIENT, DialogPhase.EARLY,
                         Party("sip:501411@acme.wte.example", 'Bruno "B" <Petit>'))
    parts = dialog_info_body("sip:501410@acme.wte.example", [ringing])
    body = with_version(parts, 7)
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" '
        b'entity="sip:501410@acme.wte.example">\r\n'
        b'<dialog id="abc@h" call-id="abc@h" direction="recipient"><state>early</state>'
        b"<remote><identity display='Bruno \"B\" &lt;Petit&gt;'>sip:501411@acme.wte.example"
        b'</identity><target uri="sip:501411@acme.wte.example"/></remote>'
        b"<local><identity>sip:501410@acme.wte.example</identity></local></dialog>\r\n"
        b"</dialog-info>\r\n")
    root = ET.fromstring(body)
    assert root.get("version") == "7" and root.get("state") == "full"
    dialog = root.find("d:dialog", NS)
    assert dialog is not None and dialog.findtext("d:state", namespaces=NS) == "early"
    identity = dialog.find("d:remote/d:identity", NS)
    assert identity is not None and identity.get("display") == 'Bruno "B" <Petit>'
    # the same parts serve every watcher; only the version differs
    assert with_version(parts, 8).replace(b'version="8"', b'version="7"') == body


def test_empty_dialog_info_is_a_valid_full_document() -> None:
    root = ET.fromstring(with_version(dialog_info_body("sip:1@d", []), 0))
    assert root.find("d:dialog", NS) is None and root.get("entity") == "sip:1@d"


@pytest.mark.parametrize(("snap", "basic", "note", "activity"), [
    (PresenceSnapshot(True), "open", None, None),
    (PresenceSnapshot(False, on_the_phone=True), "closed", "Offline", None),
    (PresenceSnapshot(True, on_the_phone=True), "open", "On the phone", "on-the-phone"),
    (PresenceSnapshot(True, on_the_phone=True, dnd=True), "open", "Do not disturb", "busy"),
])
def test_pidf(snap: PresenceSnapshot, basic: str, note: str | None,
              activity: str | None) -> None:
    body = pidf_body("sip:501410@acme.wte.example", snap)
    root = ET.fromstring(body)
    assert root.get("entity") == "sip:501410@acme.wte.example"
    assert root.findtext("p:tuple/p:status/p:basic", namespaces=NS) == basic
    assert root.findtext("p:tuple/p:note", namespaces=NS) == note
    rpid = "urn:ietf:params:xml:ns:pidf:rpid"
    found = root.find(f".//{{{rpid}}}activities")
    if activity is None:
        assert found is None
    else:
        assert found is not None and found[0].tag == f"{{{rpid}}}{activity}"


def test_message_summary_wire_text() -> None:
    assert message_summary_body("sip:501410@acme.wte.example", 2, 5) == (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:501410@acme.wte.example\r\n"
        b"Voice-Message: 2/5 (0/0)\r\n")
    assert message_summary_body("sip:1@d", 0, 3).startswith(b"Messages-Waiting: no\r\n")
    with pytest.raises(ValueError):
        message_summary_body("sip:1@d", -1, 0)


# -- what watchers see of a user --

def test_user_activity_reports_an_ended_dialog_once() -> None:
    act = UserActivity()
    act.ringing("u", "c1", DialogDirection.RECIPIENT, Party("sip:a@d"))
    assert not act.in_call("u")  # ringing is not talking
    assert act.answered("u", "c1") is not None and act.answered("u", "c1") is None
    assert act.in_call("u")
    ended = act.ended("u", "c1")
    assert ended is not None and ended.phase is DialogPhase.TERMINATED
    assert [d.phase for d in act.dialogs("u")] == [DialogPhase.TERMINATED]
    assert not act.in_call("u") and act.ended("u", "c1") is None
    act.forget_terminated("u")
    assert act.dialogs("u") == []
    assert act.answered("u", "unknown") is None


def test_publications_expire_and_are_replaced() -> None:
    act = UserActivity()
    act.publish("u", Publication("e1", b"<a/>", "application/pidf+xml", 100.0))
    assert act.latest_publication("u", 50.0) is not None
    act.publish("u", Publication("e2", b"<b/>", "application/pidf+xml", 200.0), "e1")
    assert act.publication("u", "e1", 50.0) is None
    latest = act.latest_publication("u", 150.0)
    assert latest is not None and latest.body == b"<b/>"
    assert act.latest_publication("u", 250.0) is None
    assert act.unpublish("u", "e2") and not act.unpublish("u", "e2")
    assert act.set_dnd("u", True) and not act.set_dnd("u", True) and act.dnd("u")
