"""Which ringing call a pickup code answers (issue 16): the picker's group (the plan's
`pickup_group:`, else the site), the customer, directed pickup; fake calls, no sockets."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace
from typing import Any

from dialplan import Plan, load_plan_data, parse_yaml_text
from switch.b2bua.call import LegState
from switch.b2bua.effects import Side
from switch.pickup import PickupService, pickup_group

PLAN = textwrap.dedent("""\
    customers:
      - id: acme
        sip_domain: acme.example
        trunks:
          - {id: carrier, host: 127.0.0.1, port: 5090, trusted: ["127.0.0.1"]}
        sites:
          - code: "01"
            address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
            numbers: ["+33562070400-+33562070499"]
            trunk: carrier
            users:
              - {name: A, number: "+33562070410", pack: calling}
              - {name: B, number: "+33562070411", pack: calling}
              - {name: C, number: "+33562070412", pack: calling}
              - {name: D, number: "+33562070413", pack: calling, pickup_group: compta}
              - {name: E, number: "+33562070414", pack: calling, pickup_group: compta}
    """)


def _plan() -> Plan:
    return load_plan_data(parse_yaml_text(PLAN, "pickup.yaml"))


def _call(plan: Plan, rung: str, state: LegState = LegState.EARLY,
          ringing: bool = True) -> Any:
    target = plan.user_by_full_number(rung)
    leg = SimpleNamespace(id=0, state=state)
    call = SimpleNamespace(ringing_phase=ringing, legs=[leg])
    entry = SimpleNamespace(call=call, leg_users={0: rung},
                            decision=SimpleNamespace(target=target))
    return SimpleNamespace(side=Side.CALLER, entry=entry)


def _service(refs: list[Any]) -> PickupService:
    svc = PickupService(rooms=None)  # type: ignore[arg-type]
    svc.calls = SimpleNamespace(by_call_id={str(i): r for i, r in enumerate(refs)})  # type: ignore[assignment]
    return svc


def test_groups_default_to_the_site_unless_the_plan_names_one() -> None:
    plan = _plan()
    users = {n: plan.user_by_full_number(n) for n in ("501410", "501413")}
    assert pickup_group(users["501410"]) == "site:01"  # type: ignore[arg-type]
    assert pickup_group(users["501413"]) == "compta"  # type: ignore[arg-type]


def test_group_pickup_answers_the_oldest_call_of_ones_group_only() -> None:
    plan = _plan()
    compta, first, second = _call(plan, "501414"), _call(plan, "501410"), _call(plan, "501411")
    svc = _service([compta, first, second])
    picker = plan.user_by_full_number("501412")
    assert picker is not None
    found = svc.ringing_for(picker, None)
    assert found is not None and found[0] is first.entry and found[1] == "501410"
    d = plan.user_by_full_number("501413")
    assert d is not None
    found = svc.ringing_for(d, None)
    assert found is not None and found[1] == "501414"


def test_never_ones_own_call_nor_an_answered_or_cancelled_leg() -> None:
    plan = _plan()
    svc = _service([_call(plan, "501412"), _call(plan, "501410", LegState.CANCELLED),
                    _call(plan, "501411", ringing=False)])
    picker = plan.user_by_full_number("501412")
    assert picker is not None
    assert svc.ringing_for(picker, None) is None


def test_directed_pickup_takes_the_named_user_even_of_another_group() -> None:
    plan = _plan()
    svc = _service([_call(plan, "501410"), _call(plan, "501414")])
    picker, target = plan.user_by_full_number("501412"), plan.user_by_full_number("501414")
    assert picker is not None and target is not None
    found = svc.ringing_for(picker, target)
    assert found is not None and found[1] == "501414"


def test_another_customers_call_is_never_picked() -> None:
    plan = _plan()
    other = _call(plan, "501410")
    other.entry.decision = SimpleNamespace(target=SimpleNamespace(
        customer=SimpleNamespace(id="globex")))
    svc = _service([other])
    picker = plan.user_by_full_number("501412")
    assert picker is not None
    assert svc.ringing_for(picker, None) is None
