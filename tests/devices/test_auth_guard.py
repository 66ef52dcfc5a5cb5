"""AuthFailureGuard: wrong responses slow then block an address; normal rounds do not count."""

from __future__ import annotations

import logging

import pytest
from devices_helpers import REALM, register
from test_digest_auth import DIRECTORY, NOW, SECRET, authorized, nonce_of

from devices.digest import AuthOutcome, DigestAuthenticator
from devices.guard import AuthFailureGuard, GuardState, Verdict

IP = "198.51.100.7"


def guard() -> AuthFailureGuard:
    return AuthFailureGuard(max_failures=5, window=60.0, block_seconds=300.0, slow_after=2,
                            base_delay=0.5, max_delay=4.0)


def test_slow_then_block_then_release(caplog: pytest.LogCaptureFixture) -> None:
    g = guard()
    assert g.check(IP, NOW).verdict is Verdict.ALLOW
    assert g.record_failure(IP, NOW).verdict is Verdict.ALLOW
    v = g.record_failure(IP, NOW + 1)
    assert v.verdict is Verdict.SLOW and v.delay == 0.5
    assert g.check(IP, NOW + 1).verdict is Verdict.SLOW
    assert g.record_failure(IP, NOW + 2).delay == 1.0
    assert g.record_failure(IP, NOW + 3).delay == 2.0
    with caplog.at_level(logging.WARNING, logger="devices.guard"):
        v = g.record_failure(IP, NOW + 4)
    assert v.verdict is Verdict.BLOCK and not v.allowed and v.blocked
    assert any("BLOCKED" in r.getMessage() for r in caplog.records)
    assert g.state(IP) is GuardState.BLOCKED
    blocked = g.check(IP, NOW + 100)
    assert blocked.verdict is Verdict.BLOCK and blocked.delay == pytest.approx(204)
    assert g.check(IP, NOW + 305).verdict is Verdict.ALLOW
    assert g.state(IP) is GuardState.CLEAR
    assert g.check("203.0.113.1", NOW).verdict is Verdict.ALLOW  # other addresses unaffected


def test_failures_outside_the_window_are_forgotten() -> None:
    g = guard()
    for i in range(4):
        g.record_failure(IP, NOW + i * 61)
    assert g.check(IP, NOW + 4 * 61).verdict is Verdict.ALLOW


def test_success_clears() -> None:
    g = guard()
    for i in range(4):
        g.record_failure(IP, NOW + i)
    assert g.check(IP, NOW + 4).verdict is Verdict.SLOW
    g.record_success(IP, NOW + 5)
    assert g.check(IP, NOW + 5).verdict is Verdict.ALLOW
    assert g.record_failure(IP, NOW + 6).verdict is Verdict.ALLOW


def _round(a: DigestAuthenticator, g: AuthFailureGuard, now: float, password: str) -> AuthOutcome:
    """What the caller does for one REGISTER: check, verify, record only wrong answers."""
    assert g.check(IP, now).allowed
    first = a.verify(register(contacts=["<sip:x@192.0.2.10>"]), REALM, DIRECTORY, now)
    assert first.outcome is AuthOutcome.NO_CREDENTIALS  # the 401 round: not recorded
    result = a.verify(authorized(nonce_of(a, now), password=password), REALM, DIRECTORY, now)
    if result.outcome is AuthOutcome.FAILED:
        g.record_failure(IP, now)
    elif result.outcome is AuthOutcome.OK:
        g.record_success(IP, now)
    return result.outcome


def test_reregistering_phone_is_never_slowed() -> None:
    a, g = DigestAuthenticator(SECRET), guard()
    for i in range(50):
        assert _round(a, g, NOW + i * 30, "s3cret") is AuthOutcome.OK
        assert g.check(IP, NOW + i * 30).verdict is Verdict.ALLOW
    assert g.state(IP) is GuardState.CLEAR


def test_guessing_is_blocked() -> None:
    a, g = DigestAuthenticator(SECRET), guard()
    for i in range(5):
        assert _round(a, g, NOW + i, f"guess{i}") is AuthOutcome.FAILED
    assert g.check(IP, NOW + 5).verdict is Verdict.BLOCK


def test_tracking_is_bounded() -> None:
    g = AuthFailureGuard(max_tracked=10)
    for i in range(100):
        g.record_failure(f"10.0.0.{i}", NOW)
    assert len(g) == 10


def test_bad_thresholds_rejected() -> None:
    with pytest.raises(ValueError):
        AuthFailureGuard(max_failures=2, slow_after=3)
