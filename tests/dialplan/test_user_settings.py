"""The pure per-user settings (dialplan.user_settings): what each feature code changes."""

from __future__ import annotations

import datetime as dt

from dialplan import CallContext, DecisionKind, FeatureName, Plan, route
from dialplan.user_settings import (
    DEFAULT_SETTINGS,
    MAX_SIMULTANEOUS,
    FeatureOutcome,
    UserSettings,
    apply_feature,
    destination_of,
    no_answer_seconds,
)


def test_defaults() -> None:
    s = DEFAULT_SETTINGS
    assert s.call_waiting is True and s.dnd is False and s.forward_always is None


def test_dnd_on_off() -> None:
    on, outcome = apply_feature(DEFAULT_SETTINGS, FeatureName.DND_ON, None)
    assert on.dnd and outcome is FeatureOutcome.ON
    off, outcome = apply_feature(on, FeatureName.DND_OFF, None)
    assert not off.dnd and outcome is FeatureOutcome.OFF


def test_forward_always_takes_the_argument_and_off_clears_it() -> None:
    on, outcome = apply_feature(DEFAULT_SETTINGS, FeatureName.FORWARD_ALWAYS_ON, "0612345678")
    assert on.forward_always == "0612345678" and outcome is FeatureOutcome.ON
    off, outcome = apply_feature(on, FeatureName.FORWARD_ALWAYS_OFF, None)
    assert off.forward_always is None and outcome is FeatureOutcome.OFF


def test_forward_no_answer_with_its_ring_time() -> None:
    s, _ = apply_feature(DEFAULT_SETTINGS, FeatureName.FORWARD_NO_ANSWER_ON, "501411*12")
    assert s.forward_no_answer == "501411" and s.forward_no_answer_seconds == 12.0
    assert no_answer_seconds(s) == 12.0
    assert no_answer_seconds(UserSettings(forward_no_answer="1",
                                          forward_no_answer_seconds=1.0)) == 5.0
    assert no_answer_seconds(UserSettings(forward_no_answer_seconds=12.0)) is None
    assert destination_of(FeatureName.FORWARD_NO_ANSWER_ON, "501411*12") == "501411"


def test_bad_argument_is_refused_and_changes_nothing() -> None:
    s, outcome = apply_feature(DEFAULT_SETTINGS, FeatureName.FORWARD_BUSY_ON, "06a")
    assert s is DEFAULT_SETTINGS and outcome is FeatureOutcome.REFUSED
    s, outcome = apply_feature(DEFAULT_SETTINGS, FeatureName.ECHO_TEST, None)
    assert outcome is FeatureOutcome.REFUSED


def test_simultaneous_ring_numbers_accumulate_up_to_a_limit() -> None:
    s = DEFAULT_SETTINGS
    for i in range(MAX_SIMULTANEOUS):
        s, outcome = apply_feature(s, FeatureName.SIMULTANEOUS_RING_ON, f"061234567{i}")
        assert outcome is FeatureOutcome.ON
    assert len(s.simultaneous) == MAX_SIMULTANEOUS
    same, outcome = apply_feature(s, FeatureName.SIMULTANEOUS_RING_ON, "0699999999")
    assert same is s and outcome is FeatureOutcome.REFUSED
    cleared, outcome = apply_feature(s, FeatureName.SIMULTANEOUS_RING_OFF, None)
    assert cleared.simultaneous == () and outcome is FeatureOutcome.OFF


def test_privacy_and_call_waiting_flags() -> None:
    s, _ = apply_feature(DEFAULT_SETTINGS, FeatureName.CLIR_ON, None)
    s, _ = apply_feature(s, FeatureName.ANONYMOUS_REJECTION_ON, None)
    s, outcome = apply_feature(s, FeatureName.CALL_WAITING_OFF, None)
    assert s.clir and s.reject_anonymous and not s.call_waiting
    assert outcome is FeatureOutcome.OFF


def test_pack_gating_of_annex_16_1(plan: Plan) -> None:
    """The Workspace pack (501420) forwards and withholds its number, but has no DND,
    anonymous rejection or simultaneous ring; Calling (501410) has them all."""
    at = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    room, alice = plan.user_by_full_number("501420"), plan.user_by_full_number("501410")
    assert room is not None and alice is not None
    for dialed, status in (("*78", 403), ("*77", 403), ("*630612345678", 403),
                           ("*21501410", None), ("*32", None), ("*31501410", None)):
        d = route(plan, CallContext(room, None, dialed, at))
        if status is None:
            assert d.kind is DecisionKind.FEATURE, (dialed, d.trace)
        else:
            assert d.kind is DecisionKind.REJECT and d.status == status, (dialed, d.trace)
        assert route(plan, CallContext(alice, None, dialed, at)).kind is DecisionKind.FEATURE
