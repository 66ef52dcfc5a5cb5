"""The night switch in the dialplan: forced schedule modes in routing, the admin-only
feature code and its plan syntax (issue 12)."""

from __future__ import annotations

import textwrap
from datetime import datetime

import pytest

from dialplan import (
    CallContext,
    ConfigError,
    DecisionKind,
    FeatureName,
    Plan,
    ScheduleMode,
    load_plan_data,
    parse_yaml_text,
    route,
    route_application_target,
)
from dialplan.model import User

K = DecisionKind
MONDAY_10 = datetime(2026, 12, 21, 10, 0)  # the office schedule is open
MONDAY_20 = datetime(2026, 12, 21, 20, 0)  # closed
CLOSED = {("acme", "office"): ScheduleMode.CLOSED}
OPEN = {("acme", "office"): ScheduleMode.OPEN}


def _user(plan: Plan, number: str) -> User:
    user = plan.user_by_full_number(number)
    assert user is not None
    return user


def _carrier(plan: Plan, dialed: str, at: datetime,
             forced: dict[tuple[str, str], ScheduleMode] | None = None) -> CallContext:
    trunk = plan.customers[0].trunks["carrier"]
    if forced is None:
        return CallContext(None, trunk, dialed, at)
    return CallContext(None, trunk, dialed, at, forced=forced)


def test_default_is_automatic(plan: Plan) -> None:
    assert route(plan, _carrier(plan, "+33562070401", MONDAY_10)).kind is K.HUNT_GROUP
    assert route(plan, _carrier(plan, "+33562070401", MONDAY_20)).kind is K.VOICEMAIL


def test_forced_closed_wins_over_opening_hours(plan: Plan) -> None:
    d = route(plan, _carrier(plan, "+33562070401", MONDAY_10, CLOSED))
    assert d.kind is K.VOICEMAIL and getattr(d.target, "full_number", None) == "501410"
    assert "schedule office: forced closed by the night switch" in d.trace


def test_forced_open_wins_over_closed_hours(plan: Plan) -> None:
    d = route(plan, _carrier(plan, "+33562070400", MONDAY_20, OPEN))
    assert d.kind is K.AUTO_ATTENDANT, d.trace
    assert "schedule office: forced open by the night switch" in d.trace


def test_auto_entry_is_the_schedule(plan: Plan) -> None:
    auto = {("acme", "office"): ScheduleMode.AUTO}
    assert route(plan, _carrier(plan, "+33562070401", MONDAY_20, auto)).kind is K.VOICEMAIL
    assert route(plan, _carrier(plan, "+33562070401", MONDAY_10, auto)).kind is K.HUNT_GROUP


def test_forced_mode_of_another_customer_or_schedule_does_not_apply(plan: Plan) -> None:
    other = {("globex", "office"): ScheduleMode.CLOSED, ("acme", "weekend"): ScheduleMode.CLOSED}
    assert route(plan, _carrier(plan, "+33562070401", MONDAY_10, other)).kind is K.HUNT_GROUP


def test_internal_caller_sees_the_forced_mode(plan: Plan) -> None:
    caller = _user(plan, "501411")
    for dialed in ("401", "501401", "+33562070401"):  # short, full, own public number
        d = route(plan, CallContext(caller, None, dialed, MONDAY_10, forced=CLOSED))
        assert d.kind is K.VOICEMAIL, (dialed, d.trace)


def test_application_target_honours_forced_modes(plan: Plan) -> None:
    site = plan.customers[0].sites_by_code["01"]
    assert route_application_target(plan, site, "501401", MONDAY_10).kind is K.HUNT_GROUP
    d = route_application_target(plan, site, "501401", MONDAY_10, forced=CLOSED)
    assert d.kind is K.VOICEMAIL
    assert "schedule office: forced closed by the night switch" in d.trace
    d = route_application_target(plan, site, "501401", MONDAY_20, forced=OPEN)
    assert d.kind is K.HUNT_GROUP


# -- the feature code -------------------------------------------------------------------


@pytest.mark.parametrize(("dialed", "mode"), [
    ("*551", ScheduleMode.OPEN), ("*552", ScheduleMode.CLOSED), ("*550", ScheduleMode.AUTO)])
def test_admin_dials_the_night_switch(plan: Plan, dialed: str, mode: ScheduleMode) -> None:
    d = route(plan, CallContext(_user(plan, "501410"), None, dialed, MONDAY_10))
    assert d.kind is K.FEATURE, d.trace
    assert d.feature == FeatureName.NIGHT_SWITCH.value
    assert d.schedule == "office" and d.argument == mode.value


@pytest.mark.parametrize(("caller", "dialed", "status"), [
    ("501411", "*552", 403),  # not an admin
    ("501412", "*551", 403),
    ("501410", "*55", 484),  # the mode digit is missing
    ("501410", "*559", 404),  # no such mode
    ("501410", "*5512", 404),
])
def test_night_switch_refusals(plan: Plan, caller: str, dialed: str, status: int) -> None:
    d = route(plan, CallContext(_user(plan, caller), None, dialed, MONDAY_10))
    assert d.kind is K.REJECT and d.status == status, d.trace


def test_admin_flag_loads(plan: Plan) -> None:
    assert _user(plan, "501410").admin is True
    assert _user(plan, "501411").admin is False


# -- plan syntax -------------------------------------------------------------------------

PLAN = """\
customers:
  - id: acme
    sip_domain: acme.example
    trunks:
      - {id: carrier, host: 127.0.0.1, port: 5090, trusted: ["127.0.0.1"]}
    feature_codes:
      FEATURES
    schedules:
SCHEDULES
    sites:
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
        users:
          - {name: A, number: "+33562070410", pack: calling, ADMIN}
"""
ONE = "      - {id: office, hours: {mon: \"08:00-18:00\"}}\n"
TWO = ONE + "      - {id: shop, hours: {sat: \"09:00-12:00\"}}\n"


def _plan(features: str, schedules: str = ONE, admin: str = "admin: true") -> str:
    return (PLAN.replace("FEATURES", features).replace("SCHEDULES\n", schedules)
            .replace("ADMIN", admin))


def _messages(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_plan_data(parse_yaml_text(textwrap.dedent(text), "night.yaml"))
    return [i.message for i in exc.value.issues]


def test_short_form_with_a_single_schedule() -> None:
    plan = load_plan_data(parse_yaml_text(_plan('"*55": night_switch'), "ok.yaml"))
    assert plan.customers[0].feature_schedules == {"*55": "office"}
    assert plan.customers[0].feature_codes["*55"] is FeatureName.NIGHT_SWITCH


def test_mapping_form_names_the_schedule() -> None:
    text = _plan('"*55": {feature: night_switch, schedule: shop}\n      "*56": '
                 '{feature: night_switch, schedule: office}', TWO)
    plan = load_plan_data(parse_yaml_text(text, "ok.yaml"))
    assert plan.customers[0].feature_schedules == {"*55": "shop", "*56": "office"}
    admin = plan.user_by_full_number("501410")
    assert admin is not None
    d = route(plan, CallContext(admin, None, "*562", MONDAY_10))
    assert d.schedule == "office" and d.argument == "closed"


@pytest.mark.parametrize(("features", "schedules", "admin", "words"), [
    ('"*55": night_switch', TWO, "admin: true", "needs the schedule it forces"),
    ('"*55": {feature: night_switch, schedule: nope}', ONE, "admin: true", "no schedule 'nope'"),
    ('"*55": {feature: echo_test, schedule: office}', ONE, "admin: true",
     "only night_switch takes a schedule"),
    ('"*55": {feature: night_switch, when: office}', ONE, "admin: true", "unknown field"),
    ('"*55": night_switch\n      "*551": echo_test', ONE, "admin: true", "starts with *55"),
    ('"*55": night_switch', ONE, "admin: yes please", "must be true or false"),
])
def test_bad_night_switch_plans(features: str, schedules: str, admin: str, words: str) -> None:
    messages = _messages(_plan(features, schedules, admin))
    assert any(words in m for m in messages), messages
