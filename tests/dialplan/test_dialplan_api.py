"""The contracts other packages rely on: lookups, credentials, reload, CLI functions."""

from __future__ import annotations

import hashlib
import io
import shutil
from datetime import datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dialplan import (
    CallContext,
    DecisionKind,
    HuntGroup,
    Pack,
    PackFeature,
    Plan,
    PlanHolder,
    load_plan,
    route,
)
from dialplan.cli import plan_check, plan_explain

from .conftest import EXAMPLE


def test_demo_accounts_and_numbering(plan: Plan) -> None:
    # Service description 2.6.3.3: +33562070410 -> 501410, +33223280411 -> 502411.
    for full, e164, site in [("501410", "+33562070410", "01"), ("501411", "+33562070411", "01"),
                             ("502411", "+33223280411", "02")]:
        user = plan.user_by_username(full, "acme.wte.example")
        assert user is not None
        assert (user.full_number, user.public_number, user.site.code) == (full, e164, site)
        assert user.customer.id == "acme"
    bruno = plan.user_by_full_number("501411")
    assert bruno is not None and bruno.clir and bruno.barring.id == "internal_only"


def test_ha1_digests_match_demo_passwords(plan: Plan) -> None:
    for user in plan.users:
        raw = f"{user.sip.username}:{user.sip.realm}:demo-{user.full_number}".encode()
        assert user.sip.realm == "acme.wte.example"
        assert user.sip.ha1_md5 == hashlib.md5(raw).hexdigest()
        assert user.sip.ha1_sha256 == hashlib.sha256(raw).hexdigest()


def test_lookups_by_domain(plan: Plan) -> None:
    for host in ("acme.wte.example", "127.0.0.1", "localhost", "LOCALHOST"):
        assert plan.customer_for_domain(host) is plan.customers[0]
        assert plan.user_by_username("501410", host.lower()) is not None
    assert plan.customer_for_domain("evil.example") is None
    assert plan.user_by_username("501410", "evil.example") is None
    assert plan.user_by_username("501410") is not None  # no domain: unique across customers
    assert plan.user_by_username("nobody") is None


def test_owner_of_number(plan: Plan) -> None:
    owner = plan.owner_of_number("+33562070401")
    assert owner is not None and owner[0] is DecisionKind.HUNT_GROUP
    assert isinstance(owner[1], HuntGroup) and owner[1].id == "sales"
    assert plan.owner_of_number("+33562070499") is None


def test_trunk_for_address(plan: Plan) -> None:
    trunk = plan.trunk_for_address("127.0.0.1", 5090)
    assert trunk is not None and (trunk.id, trunk.host, trunk.port) == ("carrier", "127.0.0.1", 5090)
    # trusted by address AND port: a phone on the same host is not the carrier (toll fraud)
    assert plan.trunk_for_address("127.0.0.1", 40000) is None
    assert plan.trunk_for_address("192.0.2.1", 5090) is None


def test_example_has_every_pack_and_the_required_objects(plan: Plan) -> None:
    packs = {u.pack for u in plan.users}
    assert packs == set(Pack)
    c = plan.customers[0]
    assert c.feature_codes["*43"].value == "echo_test" and c.feature_codes["*44"].value == "tone_test"
    assert all(s.short_dialing for s in c.sites)
    ws = [u for u in plan.users if u.pack is Pack.WORKSPACE]
    assert all(not u.has(PackFeature.VOICEMAIL) and u.devices == 1 for u in ws)
    assert str(c.sites[0].networks[0]) == "127.0.0.0/8"


def test_plan_holder_keeps_old_plan_on_bad_reload(tmp_path: Path) -> None:
    good = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE, good)
    holder = PlanHolder(load_plan(good))
    first = holder.plan
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace('code: "02"', 'code: "01"'))
    issues = holder.reload(bad)
    assert issues and "site code 01 already used" in issues[0].message
    assert holder.plan is first and holder.generation == 0
    assert holder.reload(tmp_path / "missing.yaml")
    assert holder.reload(good) == []
    assert holder.plan is not first and holder.generation == 1


def test_plan_check_ok_and_errors(tmp_path: Path) -> None:
    out = io.StringIO()
    assert plan_check([str(EXAMPLE)], out) == 0
    text = out.getvalue()
    assert "OK" in text and "2 site(s)" in text and "8 user(s)" in text and "1 hunt group(s)" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace('"+33223280412"', '"+3322328"'))
    out = io.StringIO()
    assert plan_check([str(EXAMPLE), str(bad)], out) == 1
    lines = out.getvalue().splitlines()
    errors = [ln for ln in lines if ln.startswith(str(bad) + ":") and "E.164" in ln]
    line_no = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if '"+3322328"' in ln)
    assert errors == [f"{bad}:{line_no}: customers[0].sites[1].users[1].number: "
                      "'+3322328' is not a valid E.164 number (e.g. +33562070410)"]


def test_plan_explain_prints_decision_and_rules() -> None:
    out = io.StringIO()
    assert plan_explain(str(EXAMPLE), "501410", "0612345678", datetime(2026, 12, 25, 10), out) == 0
    text = out.getvalue()
    assert text.startswith("decision: EXTERNAL +33612345678 via trunk carrier\n")
    assert "  1. caller 501410" in text and "allowed by profile no_premium" in text
    out = io.StringIO()
    assert plan_explain(str(EXAMPLE), "trunk:carrier", "+33562070400", datetime(2026, 12, 25, 10), out) == 0
    assert "VOICEMAIL 501410" in out.getvalue() and "Christmas" in out.getvalue()
    out = io.StringIO()
    assert plan_explain(str(EXAMPLE), "509999", "112", None, out) == 2


DIALED = st.text(alphabet="0123456789*#+ :@;=-.abcsiptelurn<>", max_size=40)
CALLERS = ["501410", "501411", "501420", "501450", "502412"]


@settings(max_examples=300, deadline=None)
@given(dialed=DIALED, caller=st.sampled_from(CALLERS))
def test_route_never_raises_and_rejects_carry_a_status(plan: Plan, dialed: str, caller: str) -> None:
    user = plan.user_by_full_number(caller)
    d = route(plan, CallContext(user, None, dialed, datetime(2026, 6, 1, 12)))
    assert d.trace
    if d.kind is DecisionKind.REJECT:
        assert d.status is not None and 400 <= d.status < 700 and d.reason


@settings(max_examples=200, deadline=None)
@given(
    number=st.sampled_from(["15", "17", "18", "112", "114", "115", "116000", "116117", "119",
                            "191", "196", "197"]),
    form=st.sampled_from(["{}", "sip:{}@acme.wte.example;user=phone", "tel:{}", "sip:{}@127.0.0.1"]),
    caller=st.sampled_from(CALLERS),
)
def test_emergency_is_never_barred(plan: Plan, number: str, form: str, caller: str) -> None:
    user = plan.user_by_full_number(caller)
    d = route(plan, CallContext(user, None, form.format(number), datetime(2026, 6, 1, 12)))
    assert d.kind is DecisionKind.EMERGENCY and d.number == number
