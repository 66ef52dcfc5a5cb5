"""AuthFailureGuard: wrong responses slow then block a source and an account; scores decay
instead of being reset by a success; a registered phone behind a blocked NAT address is
still admitted. All on a fake clock (time is an argument)."""

from __future__ import annotations

import logging

import pytest
from devices_helpers import REALM, register
from test_digest_auth import DIRECTORY, NOW, SECRET, authorized, nonce_of

from devices.digest import AuthOutcome, DigestAuthenticator
from devices.guard import AuthFailureGuard, GuardState, Verdict

IP = "198.51.100.7"
NAT = "203.0.113.50"


def guard(**kw: object) -> AuthFailureGuard:
    params: dict[str, object] = dict(max_failures=5, window=60.0, block_seconds=300.0,
                                     slow_after=2, base_delay=0.5, max_delay=4.0)
    params.update(kw)
    return AuthFailureGuard(**params)  # type: ignore[arg-type]


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
    # attempts while blocked are not counted: the block ends on time whatever happens
    assert g.record_failure(IP, NOW + 200).blocked
    assert g.check(IP, NOW + 305).verdict is Verdict.ALLOW
    assert g.state(IP) is GuardState.CLEAR
    assert g.check("203.0.113.1", NOW).verdict is Verdict.ALLOW  # other addresses unaffected


def test_54_guesses_interleaved_with_successes_are_blocked() -> None:
    """The attack of issue 20 item 5: the attacker logs into its own account between
    guesses; a success used to reset the count, so 54 guesses were never blocked."""
    g = AuthFailureGuard()  # the defaults: 10 failures, half-life 60 s, slow after 3
    blocked_at = None
    for i in range(54):
        now = NOW + i * 2.0
        if g.check(IP, now, account="victim@acme").blocked:
            blocked_at = i
            break
        g.record_failure(IP, now, account="victim@acme")
        g.record_success(IP, now + 1, account="attacker@acme")  # its own account
    assert blocked_at is not None and blocked_at <= 11, blocked_at
    assert g.state(IP) is GuardState.BLOCKED


def test_decay_forgets_sparse_failures_but_not_a_steady_guesser() -> None:
    g = guard()
    for i in range(20):  # one typo every ten minutes: never slowed
        assert g.record_failure(IP, NOW + i * 600).verdict is Verdict.ALLOW
    # a failure every 5 s keeps the score climbing (decay is slow), so it is blocked
    g2 = guard()
    verdicts = [g2.record_failure(IP, NOW + i * 5).verdict for i in range(6)]
    assert Verdict.BLOCK in verdicts
    # half-life: 4 failures at once, then 60 s later they count as 2
    g3 = guard(max_failures=10, slow_after=3)
    for _ in range(4):
        g3.record_failure(IP, NOW)
    assert g3.check(IP, NOW).verdict is Verdict.SLOW
    assert g3.check(IP, NOW + 60).verdict is Verdict.ALLOW
    assert g3.state(IP, NOW + 60) is GuardState.CLEAR


def test_repeated_blocks_get_longer_and_are_bounded() -> None:
    g = guard(max_block=1000.0)
    now = NOW
    lengths = []
    for _ in range(4):
        v = g.check(IP, now)
        while not v.blocked:
            v = g.record_failure(IP, now)
            now += 1
        lengths.append(v.delay)
        now += v.delay + 1
    assert lengths == [300.0, 600.0, 1000.0, 1000.0]


def test_per_account_failures_from_many_sources_block_the_account() -> None:
    """A botnet: one guess per address never trips a source, but the account is blocked
    for every source that has no binding of it."""
    g = guard()
    for i in range(5):
        g.record_failure(f"10.9.0.{i}", NOW + i, account="501410@acme")
    assert g.account_state("501410@acme") is GuardState.BLOCKED
    assert g.check("10.9.0.99", NOW + 6, account="501410@acme").blocked
    assert not g.check("10.9.0.99", NOW + 6, account="501411@acme").blocked
    assert not g.check("10.9.0.99", NOW + 6).blocked  # the source itself is clean


def test_account_lockout_spares_registered_phones_and_ends() -> None:
    bound = {("501410@acme", NAT)}
    g = guard(has_binding=lambda account, source: (account, source) in bound)
    for i in range(5):  # an attacker elsewhere guesses the victim's password
        g.record_failure(f"10.9.0.{i}", NOW + i, account="501410@acme")
    # the victim's phone, registered from the office, still gets in
    assert g.check(NAT, NOW + 10, account="501410@acme").verdict is Verdict.ALLOW
    # a new device from elsewhere waits for the block to end, which it does
    assert g.check("192.0.2.1", NOW + 10, account="501410@acme").blocked
    assert not g.check("192.0.2.1", NOW + 400, account="501410@acme").blocked


def test_nat_attacker_does_not_lock_the_company_out() -> None:
    """One attacker behind the company's NAT address guesses other accounts until the
    address is blocked; the company's registered phones keep registering and calling."""
    bound = {("501410@acme", NAT), ("501411@acme", NAT)}
    g = guard(has_binding=lambda account, source: (account, source) in bound)
    for i in range(5):
        g.record_failure(NAT, NOW + i, account=f"50{2000 + i}@acme")
    assert g.state(NAT) is GuardState.BLOCKED
    for user in ("501410@acme", "501411@acme"):
        assert g.check(NAT, NOW + 10, account=user).verdict is Verdict.ALLOW
        g.record_success(NAT, NOW + 10, account=user)
    # an account not registered from there, and requests naming no account, are refused
    assert g.check(NAT, NOW + 10, account="501412@acme").blocked
    assert g.check(NAT, NOW + 10).blocked
    # guessing a registered colleague's password from inside is still throttled, then
    # blocked for that one account from that one address
    verdicts = [g.record_failure(NAT, NOW + 20 + i, account="501411@acme").verdict
                for i in range(5)]
    assert verdicts[1] is Verdict.SLOW and verdicts[-1] is Verdict.BLOCK
    assert g.check(NAT, NOW + 30, account="501411@acme").blocked
    assert g.check(NAT, NOW + 30, account="501410@acme").verdict is Verdict.ALLOW


def test_a_success_clears_nothing() -> None:
    g = guard()
    for i in range(4):
        g.record_failure(IP, NOW + i, account="x@acme")
    assert g.check(IP, NOW + 4).verdict is Verdict.SLOW
    g.record_success(IP, NOW + 5, account="x@acme")
    assert g.check(IP, NOW + 5).verdict is Verdict.SLOW
    assert g.record_failure(IP, NOW + 6).blocked


def test_logged_keys_are_escaped(caplog: pytest.LogCaptureFixture) -> None:
    g = guard()
    forged = "x\nWARNING auth guard source=192.0.2.66: CLEAR -> BLOCKED"
    with caplog.at_level(logging.INFO, logger="devices.guard"):
        for i in range(5):
            g.record_failure(IP, NOW + i, account=forged)
    messages = [r.getMessage() for r in caplog.records]
    assert messages and all("\n" not in m for m in messages)
    assert any("x\\nWARNING" in m for m in messages)


def _round(a: DigestAuthenticator, g: AuthFailureGuard, now: float, password: str) -> AuthOutcome:
    """What the caller does for one REGISTER: check, verify, record only wrong answers."""
    assert g.check(IP, now).allowed
    first = a.verify(register(contacts=["<sip:x@192.0.2.10>"]), REALM, DIRECTORY, now)
    assert first.outcome is AuthOutcome.NO_CREDENTIALS  # the 401 round: not recorded
    result = a.verify(authorized(nonce_of(a, now), password=password), REALM, DIRECTORY, now)
    if result.outcome is AuthOutcome.FAILED:
        g.record_failure(IP, now, account=f"{result.username}@{REALM}")
    elif result.outcome is AuthOutcome.OK:
        g.record_success(IP, now, account=f"{result.username}@{REALM}")
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
        g.record_failure(f"10.0.0.{i}", NOW, account=f"u{i}@acme")
    assert len(g) == 10


def test_bad_thresholds_rejected() -> None:
    with pytest.raises(ValueError):
        AuthFailureGuard(max_failures=2, slow_after=3)
    with pytest.raises(ValueError):
        AuthFailureGuard(window=0)
