"""Personal features on the call path (switch.services.personal) over the example plan:
feature codes stored before they are confirmed (barring checked), DND and call waiting
busy, anonymous rejection 433, forwarding always followed with loop detection, emergency
untouched, Diversion/History-Info and CLIR on the legs, group members in DND skipped."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from dialplan import CallContext, DecisionKind, Plan, RoutingDecision, User, load_plan, route
from dialplan.user_settings import FeatureOutcome, SequentialStep, UserSettings
from switch.b2bua.assembly import LegTarget
from switch.b2bua.decisions import AnswerWith, Exhausted, NextStep
from switch.services.personal import PersonalCalls
from switch.services.user_settings import UserSettingsService
from switch.sip import NameAddr, Request, SipUri, parse_message
from switch.storage.user_settings import CallLog
from switch.transaction import Peer

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)  # a Wednesday, office hours


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], UserSettings] = {}
        self.fail = False

    async def load_all(self) -> dict[tuple[str, str], UserSettings]:
        return dict(self.rows)

    async def save(self, customer: str, number: str, settings: UserSettings,
                   now: float) -> None:
        if self.fail:
            raise RuntimeError("database down")
        self.rows[(customer, number)] = settings

    async def call_log(self, customer: str, number: str, *, limit: int = 50,
                       mark_read: float | None = None) -> CallLog:
        return CallLog((), 0)


@dataclass
class Holder:
    plan: Plan


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(EXAMPLE)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def personal(plan: Plan, store: MemoryStore) -> PersonalCalls:
    return PersonalCalls(UserSettingsService(store, lambda: 1.0), Holder(plan),
                         wall_clock=lambda: NOW)


def user(plan: Plan, number: str) -> User:
    u = plan.user_by_full_number(number)
    assert u is not None
    return u


def invite(from_user: str = "501411", privacy: str | None = None) -> Request:
    extra = f"Privacy: {privacy}\r\n" if privacy else ""
    raw = (f"INVITE sip:501410@acme.example SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa1\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:{from_user}@acme.example>;tag=a\r\n"
           "To: <sip:501410@acme.example>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
           f"Contact: <sip:{from_user}@127.0.0.1:40000>\r\n{extra}Content-Length: 0\r\n\r\n")
    msg = parse_message(raw.encode())
    assert isinstance(msg, Request)
    return msg


def dial(plan: Plan, caller: User | None, dialed: str) -> RoutingDecision:
    trunk = None if caller is not None else next(iter(plan.customers[0].trunks.values()))
    return route(plan, CallContext(caller, trunk, dialed, NOW))


def change(personal: PersonalCalls, plan: Plan, who: str, dialed: str) -> FeatureOutcome:
    decision = dial(plan, user(plan, who), dialed)
    assert decision.kind is DecisionKind.FEATURE, decision.trace
    routing = personal.route(decision, user(plan, who), invite(who), set)
    assert routing is not None and routing.feature is not None

    async def run() -> FeatureOutcome:
        assert routing.feature is not None
        handling = await routing.feature
        app = handling.factory(__import__("ivr.application").application.CallInfo(
            "c", who, dialed, "t"))
        return app.outcome  # type: ignore[attr-defined,no-any-return]

    return asyncio.run(run())


def test_dnd_code_is_stored_then_calls_are_busy(personal: PersonalCalls, plan: Plan,
                                                store: MemoryStore) -> None:
    assert change(personal, plan, "501410", "*78") is FeatureOutcome.ON
    assert store.rows[("acme", "501410")].dnd is True  # durable before the confirmation
    routing = personal.route(dial(plan, user(plan, "501411"), "501410"),
                             user(plan, "501411"), invite(), set)
    assert routing is not None and routing.refuse is not None
    assert routing.refuse.status == 486
    assert change(personal, plan, "501410", "*79") is FeatureOutcome.OFF
    routing = personal.route(dial(plan, user(plan, "501411"), "501410"),
                             user(plan, "501411"), invite(), set)
    assert routing is None or routing.refuse is None


def test_dnd_busy_treatment_is_the_busy_policy_when_given(plan: Plan,
                                                           store: MemoryStore) -> None:
    def voicemail(ex: Exhausted) -> NextStep:
        return AnswerWith("echo_test")

    store.rows[("acme", "501410")] = UserSettings(dnd=True)
    service = UserSettingsService(store)
    asyncio.run(service.start())
    personal = PersonalCalls(service, Holder(plan), busy_policy=voicemail,
                             wall_clock=lambda: NOW)
    routing = personal.route(dial(plan, user(plan, "501411"), "501410"),
                             user(plan, "501411"), invite(), set)
    assert routing is not None and routing.refuse is None and routing.feature is not None
    pending = routing.feature

    async def run() -> str:
        return (await pending).name

    assert asyncio.run(run()) == "echo_test"


def test_internal_only_user_cannot_forward_to_a_mobile(personal: PersonalCalls, plan: Plan,
                                                       store: MemoryStore) -> None:
    assert change(personal, plan, "501411", "*210612345678") is FeatureOutcome.REFUSED
    assert store.rows == {}
    assert change(personal, plan, "501411", "*21501412") is FeatureOutcome.ON
    assert store.rows[("acme", "501411")].forward_always == "501412"


def test_storage_failure_refuses_and_memory_is_unchanged(personal: PersonalCalls, plan: Plan,
                                                         store: MemoryStore) -> None:
    store.fail = True
    assert change(personal, plan, "501410", "*78") is FeatureOutcome.REFUSED
    assert personal.settings.settings_for(user(plan, "501410")).dnd is False


def test_callback_on_busy_says_not_available(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*37") is FeatureOutcome.NOT_AVAILABLE


def test_forward_always_to_the_outside_is_billed_to_the_forwarding_user(
        personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*210612345678") is FeatureOutcome.ON
    routing = personal.route(dial(plan, None, "+33562070410"), None,
                             invite("+33699999999"), set)
    assert routing is not None and routing.refuse is None
    assert routing.decision.kind is DecisionKind.EXTERNAL
    assert routing.decision.e164 == "+33612345678"
    assert routing.billed is not None and routing.billed.full_number == "501410"
    assert [h.reason.value for h in routing.hops] == ["unconditional"]
    assert "+33562070410" in routing.hops[0].uri


def test_forwarding_loop_ends_with_482(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*21501412") is FeatureOutcome.ON
    assert change(personal, plan, "501412", "*21501410") is FeatureOutcome.ON
    routing = personal.route(dial(plan, user(plan, "501411"), "501410"),
                             user(plan, "501411"), invite(), set)
    assert routing is not None and routing.refuse is not None
    assert routing.refuse.status == 482


def test_chain_follows_user_to_user(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*21501412") is FeatureOutcome.ON
    assert change(personal, plan, "501412", "*21501411") is FeatureOutcome.ON
    routing = personal.route(dial(plan, None, "+33562070410"), None, invite("+3361"), set)
    assert routing is not None and routing.called is not None
    assert routing.called.full_number == "501411" and len(routing.hops) == 2


def test_anonymous_rejection_433(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*77") is FeatureOutcome.ON
    routing = personal.route(dial(plan, None, "+33562070410"), None,
                             invite("+33612345678", privacy="id"), set)
    assert routing is not None and routing.refuse is not None
    assert routing.refuse.status == 433
    shown = personal.route(dial(plan, None, "+33562070410"), None, invite("+33612345678"), set)
    assert shown is None or shown.refuse is None
    # 501411 withholds its number (clir: true in the example): rejected too
    internal = personal.route(dial(plan, user(plan, "501411"), "501410"),
                              user(plan, "501411"), invite("501411"), set)
    assert internal is not None and internal.refuse is not None


def test_call_waiting_off_is_busy_while_in_a_call(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "#58") is FeatureOutcome.OFF
    busy = personal.route(dial(plan, user(plan, "501412"), "501410"), user(plan, "501412"),
                          invite("501412"), lambda: {"501410"})
    assert busy is not None and busy.refuse is not None and busy.refuse.status == 486
    free = personal.route(dial(plan, user(plan, "501412"), "501410"), user(plan, "501412"),
                          invite("501412"), set)
    assert free is None or free.refuse is None


def test_emergency_ignores_everything(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*78") is FeatureOutcome.ON
    decision = dial(plan, user(plan, "501410"), "112")
    assert personal.route(decision, user(plan, "501410"), invite("501410"), set) is None


def _leg(user_number: str | None, ruri: str = "sip:x@127.0.0.1:5999") -> LegTarget:
    addr = NameAddr(SipUri("sip", "acme.example", "501411"))
    return LegTarget(ruri, Peer("UDP", "127.0.0.1", 5999), addr, addr, (), "501411",
                     user_number)


def test_forwarded_legs_carry_diversion_and_withheld_ones_privacy(
        personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*210612345678") is FeatureOutcome.ON
    routing = personal.route(dial(plan, None, "+33562070410"), None, invite("+336"), set)
    assert routing is not None
    routing.withhold = True
    legs = personal.targets(routing, None, invite("+336"), [[_leg(None)]],
                            lambda d, c, r: [])
    headers = dict(legs[0][0].identity_headers)
    assert "+33562070410" in headers["Diversion"]
    assert headers["History-Info"].endswith(";cause=302>;index=1.1;mp=1")
    assert headers["Privacy"] == "id" and "anonymous" in str(legs[0][0].from_)


def test_group_members_in_dnd_are_skipped(personal: PersonalCalls, plan: Plan) -> None:
    assert change(personal, plan, "501410", "*78") is FeatureOutcome.ON
    decision = dial(plan, None, "+33562070401")  # the sales hunt group, from the carrier
    assert decision.kind is DecisionKind.HUNT_GROUP
    routing = personal.route(decision, None, invite("+33612345678"), set)
    assert routing is not None and routing.refuse is None
    legs = personal.targets(routing, None, invite(), [[_leg("501410")], [_leg("501412")]],
                            lambda d, c, r: [])
    assert [[t.user for t in g] for g in legs] == [["501412"]]


def test_simultaneous_and_sequential_ring_legs(personal: PersonalCalls, plan: Plan) -> None:
    alice = user(plan, "501410")
    asyncio.run(personal.settings.update(alice, UserSettings(
        simultaneous=("0612345678",),
        sequential=(SequentialStep("0698765432", 8.0),))))
    routing = personal.route(dial(plan, user(plan, "501412"), "501410"), user(plan, "501412"),
                             invite("501412"), set)
    assert routing is not None and routing.refuse is None

    def resolve(d: RoutingDecision, c: User | None, r: Request) -> list[list[LegTarget]]:
        assert d.kind is DecisionKind.EXTERNAL
        return [[_leg(None, f"sip:{d.e164}@127.0.0.1:5999;user=phone")]]

    legs = personal.targets(routing, user(plan, "501412"), invite("501412"),
                            [[_leg("501410")]], resolve)
    assert [[t.request_uri.split("@")[0] for t in g] for g in legs] == [
        ["sip:x", "sip:+33612345678"], ["sip:+33698765432"]]
    assert "reason=follow-me" in dict(legs[0][1].identity_headers)["Diversion"]
    assert dict(legs[0][0].identity_headers).get("Diversion") is None  # the desk phone
    assert routing.hunt_step == 8.0


def test_psap_call_back_window_ignores_dnd_and_forwarding(personal: PersonalCalls,
                                                          plan: Plan) -> None:
    assert change(personal, plan, "501410", "*78") is FeatureOutcome.ON
    assert change(personal, plan, "501410", "*21501412") is FeatureOutcome.ON
    decision = dial(plan, None, "+33562070410")
    callback = RoutingDecision(DecisionKind.USER, target=decision.target,
                               trace=(*decision.trace, "emergency call-back window"))
    assert personal.route(callback, None, invite("112"), set) is None
    ordinary = personal.route(decision, None, invite("+33612345678"), set)
    assert ordinary is not None and ordinary.refuse is not None  # DND applies otherwise
