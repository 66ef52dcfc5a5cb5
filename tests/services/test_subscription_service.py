"""The subscription service with a real SIP runtime and no sockets (issue 17): the NOTIFYs
it sends for message waiting (subscribed and unsolicited), PUBLISH, limits, expiry, the
dialog fan-out with one version per watcher, and the 403 that says nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devices.location import Binding, BindingChange, ChangeKind, LocationService
from dialplan import Plan, PlanHolder, User, load_plan_data
from dialplan.yamlsource import load_yaml_file
from switch.b2bua.legs import LocalAddress
from switch.runtime import ServerRequest, SipRuntime
from switch.services import subscriptions as subs_module
from switch.services.caller import CallerCheck
from switch.services.plan import PlanAccounts
from switch.services.subscriptions import SubscriptionLimits, SubscriptionService
from switch.sip import Request, Response, parse_message
from switch.subscription.store import StoredSubscription
from switch.transaction import Peer
from tests.support.server import EXAMPLE_CONFIG

PHONE = Peer("UDP", "127.0.0.1", 40000)


class Registrar:
    def __init__(self) -> None:
        self.location = LocationService()
        self.digest = None
        self.guard = None


class Plans:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Mailboxes:
    def __init__(self) -> None:
        self.by_user: dict[str, tuple[int, int]] = {}

    def counts(self, user: str) -> tuple[int, int]:
        return self.by_user.get(user, (0, 0))


@pytest.fixture(autouse=True)
def trust_the_from_user(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Digest is the caller module's (tested with INVITE): here the From user is the
    authenticated user, so each test is about what the subscription service decides."""
    def fake(runtime: SipRuntime, sreq: ServerRequest, plan: Plan, accounts: object,
             authority: object, now: float) -> CallerCheck:
        number = str(sreq.request.from_.uri).split("sip:")[1].split("@")[0]
        user = plan.customers[0].by_full_number.get(number)
        return CallerCheck(user if isinstance(user, User) else None)

    monkeypatch.setattr(subs_module, "authenticate", fake)
    yield


class Harness:
    def __init__(self, limits: SubscriptionLimits = SubscriptionLimits()) -> None:
        plan = load_plan_data(load_yaml_file(EXAMPLE_CONFIG))
        self.runtime = SipRuntime()
        self.out: list[tuple[Request | Response, Peer]] = []

        def capture(data: bytes, dest: Peer, key: object = None) -> None:
            self.out.append((parse_message(data), dest))

        self.runtime._send = capture  # type: ignore[method-assign]
        self.registrar = Registrar()
        self.clock = Clock()
        self.mailboxes = Mailboxes()
        self.service = SubscriptionService(
            self.runtime, LocalAddress("127.0.0.1", 5060, 5061), plan=Plans(plan),
            accounts=PlanAccounts(PlanHolder(plan)), authority=self.registrar,
            locations=self.registrar, repository=None, limits=limits,
            mailboxes=self.mailboxes, wall_clock=self.clock)

    async def start(self) -> Harness:
        await self.service.start()
        return self

    def responses(self) -> list[Response]:
        return [m for m, _ in self.out if isinstance(m, Response)]

    def notifies(self) -> list[tuple[Request, Peer]]:
        return [(m, d) for m, d in self.out if isinstance(m, Request) and m.method == "NOTIFY"]

    def request(self, method: str, watcher: str, target: str, event: str, *,
                expires: int | None = 600, extra: str = "", body: bytes = b"",
                call_id: str = "c1", peer: Peer = PHONE, cseq: int = 1,
                to_tag: str | None = None) -> None:
        lines = [
            f"{method} sip:{target}@127.0.0.1 SIP/2.0",
            f"Via: SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bK{call_id}{cseq}{method}{to_tag or ''}",
            "Max-Forwards: 70", f"From: <sip:{watcher}@127.0.0.1>;tag=w",
            f"To: <sip:{target}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}", f"Contact: <sip:{watcher}@{peer.host}:{peer.port}>",
            f"Event: {event}"]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if extra:
            lines.append(extra)
        data = ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        self.runtime.deliver(data, peer)

    def bind(self, aor: str, port: int) -> Binding:
        b = Binding(aor, f"sip:x@127.0.0.1:{port}", self.clock.now + 600, 1.0, f"r{port}", 1,
                    None, None, "udp", "127.0.0.1", port, None, "ua", self.clock.now)
        self.registrar.location.apply([BindingChange(ChangeKind.UPSERT, b)])
        return b


async def test_message_waiting_notifies_subscribers_and_every_registered_phone() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501410", "501410", "message-summary")
    assert [r.status for r in h.responses()] == [200]
    initial = h.notifies()
    assert len(initial) == 1 and b"Messages-Waiting: no" in initial[0][0].body
    h.bind("acme:501410", 41000)
    h.bind("acme:501410", 41002)
    h.out.clear()
    h.mailboxes.by_user["acme:501410"] = (2, 1)
    h.service.message_waiting_changed("acme:501410")
    sent = h.notifies()
    assert len(sent) == 3  # the subscriber, and both phones unsolicited
    for req, _dest in sent:
        assert req.headers.get("Event") == "message-summary"
        assert req.headers.get("Content-Type") == "application/simple-message-summary"
        assert b"Messages-Waiting: yes" in req.body and b"Voice-Message: 2/1" in req.body
    assert sorted(d.port for _, d in sent) == [40000, 41000, 41002]
    in_dialog = next(r for r, d in sent if d.port == 40000)
    assert in_dialog.to.tag == "w" and in_dialog.cseq.seq == 2


async def test_only_the_owner_watches_a_mailbox_and_the_refusal_is_the_plain_403() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501412", "501410", "message-summary", call_id="m1")
    h.request("SUBSCRIBE", "501412", "501499", "dialog", call_id="m2")  # nobody
    first, second = h.responses()
    assert first.status == second.status == 403
    assert first.reason == second.reason == "Forbidden"
    strip = {"via", "from", "to", "call-id", "cseq"}
    assert [n for n, _ in first.headers.items() if n.lower() not in strip] == \
        [n for n, _ in second.headers.items() if n.lower() not in strip]
    assert h.notifies() == []


async def test_dialog_fan_out_one_body_each_watcher_its_own_version() -> None:
    h = await Harness().start()
    for i, port in enumerate((40000, 40002, 40004)):
        h.request("SUBSCRIBE", "501412", "501410", "dialog", call_id=f"d{i}",
                  peer=Peer("UDP", "127.0.0.1", port))
    h.request("SUBSCRIBE", "501411", "501410", "dialog", call_id="d9",
              peer=Peer("UDP", "127.0.0.1", 40006))
    h.out.clear()
    h.service.leg_ringing("acme:501410", "call-1", "recipient", "sip:501411@acme.wte.example",
                          "Bruno Petit")
    dialog = [(r, d) for r, d in h.notifies() if r.headers.get("Event") == "dialog"]
    assert len(dialog) == 4
    bodies = {r.body.replace(b'version="1"', b"") for r, _ in dialog}
    assert len(bodies) == 1  # the same document, version 1 (0 went with the first NOTIFY)
    assert b"<state>early</state>" in dialog[0][0].body
    assert b'display="Bruno Petit"' in dialog[0][0].body
    h.out.clear()
    h.service.leg_answered("acme:501410", "call-1")
    h.service.leg_answered("acme:501410", "call-1")  # told twice: one NOTIFY each
    h.service.leg_ended("acme:501410", "call-1")
    states = [r.body.split(b"<state>")[1].split(b"<")[0]
              for r, d in h.notifies() if d.port == 40000 and r.headers.get("Event") == "dialog"]
    assert states == [b"confirmed", b"terminated"]
    assert h.service.activity.dialogs("acme:501410") == []  # reported once, then forgotten


async def test_limit_per_user_answers_403_with_a_warning() -> None:
    h = await Harness(SubscriptionLimits(max_per_user=2)).start()
    for i in range(3):
        h.request("SUBSCRIBE", "501412", "501410", "presence", call_id=f"l{i}")
    statuses = [r.status for r in h.responses()]
    assert statuses == [200, 200, 403]
    assert "limit per user" in (h.responses()[-1].headers.get("Warning") or "")


async def test_the_event_id_is_echoed_in_every_notify() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501412", "501410", "dialog;id=blf7")
    h.request("SUBSCRIBE", "501412", "501410", "dialog", call_id="c2")
    events = [r.headers.get("Event") for r, _ in h.notifies()]
    assert events == ["dialog;id=blf7", "dialog"]


async def test_expiry_sends_terminated_timeout_and_forgets() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501412", "501410", "presence", expires=60)
    assert len(h.service.table) == 1
    h.out.clear()
    h.clock.now += 61
    h.service._expire()
    [(last, _)] = h.notifies()
    assert last.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert len(h.service.table) == 0 and h.service.live == {}


async def test_refresh_and_unsubscribe_in_the_dialog() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501412", "501410", "presence")
    to_tag = h.responses()[0].to.tag
    h.out.clear()
    h.request("SUBSCRIBE", "501412", "501410", "presence", expires=1200, cseq=2, to_tag=to_tag)
    assert [r.status for r in h.responses()] == [200]
    assert h.responses()[0].headers.get("Expires") == "1200"
    [(refreshed, _)] = h.notifies()  # RFC 6665 4.2.1.2: the refresh gets the state
    assert refreshed.headers.get("Subscription-State") == "active;expires=1200"
    h.request("SUBSCRIBE", "501412", "501410", "presence", expires=1200, cseq=1,
              to_tag=to_tag)  # a CSeq lower than the last one (RFC 3261 12.2.2)
    assert h.responses()[-1].status == 500
    h.out.clear()
    h.request("SUBSCRIBE", "501412", "501410", "presence", expires=0, cseq=3, to_tag=to_tag)
    assert [r.status for r in h.responses()] == [200]
    [(last, _)] = h.notifies()
    assert last.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert len(h.service.table) == 0
    h.out.clear()
    h.request("SUBSCRIBE", "501412", "501410", "presence", cseq=4, to_tag=to_tag)
    assert [r.status for r in h.responses()] == [481]  # that subscription is over


async def test_publish_from_the_own_phone_only_with_etag_and_if_match() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501412", "501410", "presence")
    h.bind("acme:501410", 41000)
    h.out.clear()
    doc = (b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
           b'entity="sip:501410@acme.wte.example"><tuple id="x"><status><basic>open</basic>'
           b"</status><note>Lunch</note></tuple></presence>")
    h.request("PUBLISH", "501411", "501410", "presence", body=doc, call_id="p0",
              extra="Content-Type: application/pidf+xml")
    assert h.responses()[-1].status == 403  # 501411 cannot publish 501410's presence
    h.request("PUBLISH", "501410", "501410", "presence", body=doc, call_id="p1",
              extra="Content-Type: application/pidf+xml")
    ok = h.responses()[-1]
    assert ok.status == 200 and ok.headers.get("Expires") == "600"
    etag = ok.headers.get("SIP-ETag")
    assert etag
    assert any(b"Lunch" in r.body for r, _ in h.notifies())
    h.request("PUBLISH", "501410", "501410", "presence", call_id="p2",
              extra="SIP-If-Match: nope")
    assert h.responses()[-1].status == 412
    h.request("PUBLISH", "501410", "501410", "presence", call_id="p3", expires=0,
              extra=f"SIP-If-Match: {etag}")
    assert h.responses()[-1].status == 200
    assert b"Lunch" not in h.notifies()[-1][0].body
    h.request("PUBLISH", "501410", "501410", "dialog", call_id="p4")
    assert h.responses()[-1].status == 489


async def test_unknown_package_is_489_with_allow_events_before_any_challenge() -> None:
    h = await Harness().start()
    h.request("SUBSCRIBE", "501412", "501410", "conference")
    [resp] = h.responses()
    assert resp.status == 489 and resp.headers.get("Allow-Events") == \
        "dialog, presence, message-summary"



class MemoryRepository:
    def __init__(self) -> None:
        self.rows: dict[str, StoredSubscription] = {}
        self.writes = 0

    async def save(self, sub: StoredSubscription) -> None:
        self.writes += 1
        self.rows[sub.id] = sub

    async def delete(self, sub_id: str) -> None:
        self.writes += 1
        self.rows.pop(sub_id, None)

    async def load_unexpired(self, now: float) -> list[StoredSubscription]:
        return [r for r in self.rows.values() if r.expires_at > now]

    async def delete_expired(self, now: float) -> int:
        gone = [k for k, r in self.rows.items() if r.expires_at <= now]
        for k in gone:
            del self.rows[k]
        return len(gone)


async def test_one_write_per_subscription_change_none_per_notify_and_restore() -> None:
    repo = MemoryRepository()
    h = Harness()
    h.service.repository = repo
    await h.start()
    h.request("SUBSCRIBE", "501412", "501410", "dialog", call_id="r1")
    h.request("SUBSCRIBE", "501412", "501499", "dialog", call_id="r2")  # refused: no write
    gone = StoredSubscription(
        "old", "dialog", "acme:501499", "acme:501412", "127.0.0.1", h.clock.now + 600, 0,
        "x", "t", "f", "<sip:501499@acme.wte.example>", "<sip:501412@127.0.0.1>",
        "sip:501412@127.0.0.1:40010", (), 1, 1, "UDP", "127.0.0.1", 40010)
    for i in range(5):  # five changes, one NOTIFY each
        h.service.leg_ringing("acme:501410", f"k{i}", "recipient", "sip:x@d", None)
    await asyncio.sleep(0.05)
    assert repo.writes == 1 and len(h.notifies()) == 6
    [row] = repo.rows.values()
    repo.rows["old"] = gone  # a subscription to a user the plan no longer has
    await h.service.stop()

    h2 = Harness()
    h2.service.repository = repo
    h2.runtime.udp = object()  # type: ignore[assignment]  # "listening": re-NOTIFY at once
    await h2.start()
    await asyncio.sleep(0.05)
    sent = h2.notifies()
    restored = next(r for r, d in sent if r.call_id == "r1")
    assert restored.cseq.seq > 100_000  # above anything sent before the restart
    assert (restored.headers.get("Subscription-State") or "").startswith("active;expires=")
    [(ended, _)] = [(r, d) for r, d in sent if r.call_id == "x"]
    assert ended.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert "old" not in repo.rows and row.id in repo.rows
    await h2.service.stop()
