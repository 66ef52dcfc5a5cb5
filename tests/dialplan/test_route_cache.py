"""RouteCache: a repeated call of one plan version is decided once, unless its decision read
a schedule (time and night switch), and a new plan version starts afresh."""

from __future__ import annotations

from datetime import datetime

from dialplan import CallContext, DecisionKind, Plan, route
from dialplan.loader import load_plan
from dialplan.router import RouteCache
from tests.dialplan.conftest import EXAMPLE

MONDAY_10 = datetime(2026, 12, 21, 10, 0)  # office open
MONDAY_20 = datetime(2026, 12, 21, 20, 0)  # office closed


def test_a_repeated_user_call_is_decided_once(plan: Plan) -> None:
    cache = RouteCache()
    alice = plan.user_by_full_number("501410")
    asked: list[datetime] = []

    def at() -> datetime:
        asked.append(MONDAY_10)
        return MONDAY_10

    first = cache.route(plan, alice, None, "501411", at)
    again = cache.route(plan, alice, None, "501411", at)
    assert again is first and cache.hits == 1 and len(asked) == 1
    assert first == route(plan, CallContext(alice, None, "501411", MONDAY_10))
    # another dialed string, or another caller, is its own decision
    other = cache.route(plan, alice, None, "502411", at)
    assert other.kind is DecisionKind.USER and other is not first
    bob = plan.user_by_full_number("501411")
    assert cache.route(plan, bob, None, "501411", at) is not first


def test_a_decision_that_read_a_schedule_is_taken_again_every_time(plan: Plan) -> None:
    cache = RouteCache()
    trunk = plan.trunk_for_address("127.0.0.1", 5090)
    assert trunk is not None
    now = [MONDAY_10]
    open_ = cache.route(plan, None, trunk, "+33562070401", lambda: now[0])
    assert open_.kind is DecisionKind.HUNT_GROUP
    now[0] = MONDAY_20  # the office closed meanwhile: the group's closed route applies
    closed = cache.route(plan, None, trunk, "+33562070401", lambda: now[0])
    assert closed.kind is DecisionKind.VOICEMAIL and cache.hits == 0


def test_a_new_plan_version_is_not_answered_from_the_old_one(plan: Plan) -> None:
    cache = RouteCache()
    alice = plan.user_by_full_number("501410")
    first = cache.route(plan, alice, None, "501411", lambda: MONDAY_10)
    reloaded = load_plan(EXAMPLE)
    alice2 = reloaded.user_by_full_number("501410")
    second = cache.route(reloaded, alice2, None, "501411", lambda: MONDAY_10)
    assert second is not first and cache.hits == 0
    assert second.target is reloaded.user_by_full_number("501411")


def test_the_cache_stays_bounded(plan: Plan) -> None:
    cache = RouteCache(max_entries=3)
    alice = plan.user_by_full_number("501410")
    for dialed in ("501411", "502411", "501420", "411", "450"):
        cache.route(plan, alice, None, dialed, lambda: MONDAY_10)
    assert len(cache._decisions) <= 3
