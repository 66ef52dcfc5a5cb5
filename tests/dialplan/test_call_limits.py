"""Call limits per account and site (issue 20 item 4), driven with a fake clock."""

from __future__ import annotations

from dialplan.call_limits import CallLimiter, CallLimits, LimitKind
from dialplan.numbers import CallCategory

NATIONAL = frozenset({CallCategory.NATIONAL})
INTERNATIONAL = frozenset({CallCategory.INTERNATIONAL})
PREMIUM = frozenset({CallCategory.PREMIUM})


def test_concurrent_limit_refuses_then_admits_after_a_call_ends() -> None:
    limiter = CallLimiter(CallLimits(account_concurrent=2, account_per_minute=0))
    first = limiter.admit("501410", "01", NATIONAL, 0.0)
    second = limiter.admit("501410", "01", NATIONAL, 1.0)
    third = limiter.admit("501410", "01", NATIONAL, 2.0)
    assert first.admitted and second.admitted
    assert not third.admitted and third.status == 403
    assert third.limit is LimitKind.ACCOUNT_CONCURRENT and third.alert
    assert limiter.admit("501411", "01", NATIONAL, 2.0).admitted  # another user is not affected
    assert first.ticket is not None
    limiter.release(first.ticket)
    assert limiter.admit("501410", "01", NATIONAL, 3.0).admitted


def test_costly_destinations_have_stricter_limits() -> None:
    limiter = CallLimiter(CallLimits(account_costly_concurrent=1, account_costly_per_minute=0))
    assert limiter.admit("501410", "01", INTERNATIONAL, 0.0).admitted
    refused = limiter.admit("501410", "01", PREMIUM, 0.5)
    assert refused.limit is LimitKind.ACCOUNT_COSTLY_CONCURRENT
    # national calls still go through while the costly limit is reached
    assert limiter.admit("501410", "01", NATIONAL, 0.6).admitted


def test_attempt_rate_is_a_sliding_minute_and_refusals_do_not_count() -> None:
    limiter = CallLimiter(CallLimits(account_per_minute=3, account_concurrent=0))
    for t in (0.0, 10.0, 20.0):
        verdict = limiter.admit("501410", "01", NATIONAL, t)
        assert verdict.ticket is not None
        limiter.release(verdict.ticket)
    refused = limiter.admit("501410", "01", NATIONAL, 30.0)
    assert refused.limit is LimitKind.ACCOUNT_RATE
    assert not limiter.admit("501410", "01", NATIONAL, 59.0).admitted
    # the attempt at 0 s has left the window; the refused ones were never counted
    assert limiter.admit("501410", "01", NATIONAL, 60.5).admitted


def test_emergency_calls_are_always_admitted_and_never_counted() -> None:
    limiter = CallLimiter(CallLimits(account_concurrent=1))
    assert limiter.admit("501411", "01", NATIONAL, 0.0).admitted
    assert not limiter.admit("501411", "01", NATIONAL, 0.1).admitted
    for i in range(50):
        assert limiter.admit("501411", "01", frozenset(), 0.2 + i, emergency=True).admitted
    assert limiter.active("501411") == 1


def test_site_limit_is_shared_by_its_users() -> None:
    limiter = CallLimiter(CallLimits(site_concurrent=3))
    admitted = [limiter.admit(f"50141{i}", "01", NATIONAL, 0.0).admitted for i in range(5)]
    assert admitted == [True, True, True, False, False]
    refused = limiter.admit("502411", "02", NATIONAL, 0.0)
    assert refused.admitted  # another site has its own pool


def test_an_alert_is_raised_once_a_minute_per_key_not_per_refusal() -> None:
    limiter = CallLimiter(CallLimits(account_concurrent=1))
    limiter.admit("501410", "01", NATIONAL, 0.0)
    alerts = [limiter.admit("501410", "01", NATIONAL, t / 10).alert for t in range(1, 200)]
    assert alerts.count(True) == 1
    assert limiter.admit("501410", "01", NATIONAL, 61.0).alert
    assert limiter.refused == 200


def test_sweep_forgets_idle_accounts() -> None:
    limiter = CallLimiter()
    for i in range(1000):
        verdict = limiter.admit(f"acc{i}", None, NATIONAL, 0.0)
        assert verdict.ticket is not None
        limiter.release(verdict.ticket)
    limiter.sweep(61.0)
    assert not limiter._counters
