"""Issue 20 item 9: an authenticated user cannot present another user's own number."""

from __future__ import annotations

from dialplan import Plan, User
from dialplan.callerid import decide


def user(plan: Plan, number: str) -> User:
    found = plan.user_by_full_number(number)
    assert isinstance(found, User)
    return found


def test_another_users_number_is_replaced_by_the_authenticated_one(plan: Plan) -> None:
    alice = user(plan, "501410")
    choice = decide(alice, "+33562070411")  # 501411's own number
    assert choice.replaced and choice.number == "+33562070410"
    assert "another user's number" in choice.reason


def test_the_sites_main_number_may_still_be_presented(plan: Plan) -> None:
    alice = user(plan, "501410")
    choice = decide(alice, "+33562070400")
    assert not choice.replaced and choice.number == "+33562070400"


def test_own_number_in_any_form_is_kept(plan: Plan) -> None:
    alice = user(plan, "501410")
    for presented in ("+33562070410", "0562070410", "501410", "410"):
        choice = decide(alice, presented)
        assert not choice.replaced and choice.number == "+33562070410", presented
