"""The `*37` service waits for the code's own call to end before calling back (a record of
another call closing while the confirmation still plays must not ring the caller)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dialplan import load_plan
from dialplan.user_settings import FeatureOutcome
from rating.cdr import CallRecord
from switch.services.busy_callback import DIALING_LIMIT_SECONDS, RECALL_GRACE_SECONDS, BusyCallbacks
from tests.support.server import EXAMPLE_CONFIG


def _record(cid: str, caller: str, callee: str | None, decision: str, disposition: str,
            customer: str) -> CallRecord:
    return CallRecord(id=cid, call_id=cid, caller=caller, callee=callee, dialed=callee or "",
                      decision=decision, site=None, customer=customer, start=0.0, end=1.0,
                      disposition=disposition)


def _service() -> tuple[BusyCallbacks, list[Any], list[float], Any]:
    plan = load_plan(EXAMPLE_CONFIG)
    now = [1000.0]
    svc = BusyCallbacks(SimpleNamespace(plan=plan), clock=lambda: now[0])
    placed: list[Any] = []
    svc.originator = SimpleNamespace(place=placed.append)  # type: ignore[assignment]
    svc._schedule = svc._serve  # type: ignore[method-assign]  # no loop: serve at once
    caller = next(u for c in plan.customers for u in c.users if u.full_number.endswith("410"))
    return svc, placed, now, caller


def _requested(svc: BusyCallbacks, alice: Any) -> tuple[str, str]:
    """`alice` found a colleague busy, then dialed *37: (customer, alice's number)."""
    customer, number = alice.customer.id, alice.full_number
    callee = next(u for u in alice.customer.users if u is not alice).full_number
    svc.record_closed(_record("c1", number, callee, "user", "busy", customer))
    assert svc.request(alice) is FeatureOutcome.ON
    return customer, number


def test_the_callback_waits_for_the_star37_call_to_end() -> None:
    svc, placed, now, alice = _service()
    customer, number = _requested(svc, alice)
    # another call's record closes while the *37 call still plays its confirmation
    svc.record_closed(_record("c2", "999", None, "external", "answered", customer))
    assert placed == []
    svc.record_closed(_record("c3", number, "*37", "feature", "answered", customer))
    assert placed == []  # the phone is still tearing the *37 call down
    now[0] += RECALL_GRACE_SECONDS - 0.1
    svc._serve()
    assert placed == []
    now[0] += 0.2
    svc._serve()
    assert len(placed) == 1 and placed[0].target == number


def test_a_star37_call_whose_record_never_closes_does_not_hold_the_callback() -> None:
    svc, placed, now, alice = _service()
    customer, _number = _requested(svc, alice)
    now[0] += DIALING_LIMIT_SECONDS + 1
    svc.record_closed(_record("c2", "999", None, "external", "answered", customer))
    assert len(placed) == 1
