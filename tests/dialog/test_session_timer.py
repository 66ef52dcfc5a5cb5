"""RFC 4028 session timers: negotiation, 422, the refresh clock with a fake `now`."""

from __future__ import annotations

import pytest

from switch.dialog.session_timer import (
    Negotiated,
    Refresher,
    SendRefresh,
    SessionExpired,
    SessionExpires,
    SessionTimer,
    SessionTimerError,
    TimerState,
    bye_margin,
    parse_min_se,
    parse_session_expires,
    uac_negotiate,
    uac_request_headers,
    uac_retry_after_422,
    uas_negotiate,
)
from switch.sip import Headers, Request, Response, SipError, parse_uri


def invite(*extra: tuple[str, str]) -> Request:
    base = [("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"), ("From", "<sip:a@x>;tag=1"),
            ("To", "<sip:b@y>"), ("Call-ID", "st1"), ("CSeq", "1 INVITE")]
    return Request("INVITE", parse_uri("sip:b@y"), Headers([*base, *extra]))


def ok(*extra: tuple[str, str], status: int = 200) -> Response:
    return Response(status, "OK", Headers([("CSeq", "1 INVITE"), *extra]))


def test_parse() -> None:
    assert parse_session_expires("1800;refresher=uas") == SessionExpires(1800, Refresher.UAS)
    assert parse_session_expires(" 90 ") == SessionExpires(90)
    assert str(SessionExpires(600, Refresher.UAC)) == "600;refresher=uac"
    assert parse_min_se("120") == 120
    for bad in ("", "abc", "90;refresher=me", "0"):
        with pytest.raises(SipError) as err:
            parse_session_expires(bad)
        assert err.value.status == 400


def test_uas_rejects_small_interval_with_422() -> None:
    req = invite(("Supported", "timer"), ("Session-Expires", "60"))
    with pytest.raises(SipError) as err:
        uas_negotiate(req, min_se=300)
    assert err.value.status == 422 and err.value.headers == (("Min-SE", "300"),)


def test_uas_cannot_422_a_uac_without_timer_support() -> None:
    d = uas_negotiate(invite(("Session-Expires", "120")), min_se=300, preferred=None)
    assert d.negotiated == Negotiated(120, Refresher.UAS, True)
    assert ("Require", "timer") not in d.headers


@pytest.mark.parametrize(
    ("headers", "preferred", "expected", "we_refresh", "require"),
    [
        ((("Supported", "timer"), ("Session-Expires", "1800;refresher=uac")), 1800, (1800, Refresher.UAC), False, True),
        ((("Supported", "timer"), ("Session-Expires", "1800")), 1800, (1800, Refresher.UAC), False, True),
        ((("Supported", "timer"), ("Session-Expires", "3600"), ("Min-SE", "600")), 300, (600, Refresher.UAC), False, True),
        ((("Supported", "timer"), ("Session-Expires", "900")), 1800, (900, Refresher.UAC), False, True),  # never raised
        ((("Session-Expires", "1800"),), 1800, (1800, Refresher.UAS), True, False),  # added by a proxy
        ((), 1800, (1800, Refresher.UAS), True, False),
        ((("Supported", "timer"),), 1800, (1800, Refresher.UAC), False, True),
    ],
)
def test_uas_negotiation(headers: tuple[tuple[str, str], ...], preferred: int,
                         expected: tuple[int, Refresher], we_refresh: bool, require: bool) -> None:
    d = uas_negotiate(invite(*headers), preferred=preferred)
    assert d.negotiated is not None
    assert (d.negotiated.interval, d.negotiated.refresher) == expected
    assert d.negotiated.we_refresh is we_refresh
    assert (("Require", "timer") in d.headers) is require
    assert ("Session-Expires", f"{expected[0]};refresher={expected[1].value}") in d.headers


def test_uas_without_timer() -> None:
    assert uas_negotiate(invite(), preferred=None).negotiated is None


def test_uac_side() -> None:
    assert uac_request_headers(1800, 90) == (("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90"))
    with pytest.raises(ValueError):
        uac_request_headers(60)
    assert uac_retry_after_422(ok(("Min-SE", "600"), status=422), 300) == (600, 600)
    with pytest.raises(SipError):
        uac_retry_after_422(ok(status=422), 300)
    assert uac_negotiate(ok(("Session-Expires", "1200;refresher=uac"))) == Negotiated(1200, Refresher.UAC, True)
    assert uac_negotiate(ok(("Session-Expires", "1200;refresher=uas"))) == Negotiated(1200, Refresher.UAS, False)
    assert uac_negotiate(ok()) is None


def test_refresher_clock() -> None:
    t = SessionTimer(context="c1")
    t.start(Negotiated(1800, Refresher.UAC, True), now=100.0)
    assert t.state is TimerState.REFRESHING and t.get_timer() == 100.0 + 900
    assert t.handle_timer(999.9) is None
    assert t.handle_timer(1000.0) == SendRefresh(1800)
    assert t.state is TimerState.REFRESH_SENT
    assert t.get_timer() == 100.0 + 1800 - 32
    t.start(Negotiated(1800, Refresher.UAC, True), now=1001.0)  # the refresh succeeded
    assert t.get_timer() == 1001.0 + 900


def test_refresh_never_answered_expires() -> None:
    t = SessionTimer()
    t.start(Negotiated(90, Refresher.UAS, True), now=0.0)
    assert t.handle_timer(45.0) == SendRefresh(90)
    assert t.get_timer() == 90 - 30  # min(32, 90/3)
    assert t.handle_timer(60.0) == SessionExpired(90)
    assert t.state is TimerState.EXPIRED and t.get_timer() is None


def test_watcher_sends_bye_before_expiry() -> None:
    t = SessionTimer()
    t.start(Negotiated(1800, Refresher.UAC, False), now=10.0)
    assert t.state is TimerState.WATCHING and t.get_timer() == 10.0 + 1800 - 32
    t.start(Negotiated(1800, Refresher.UAC, False), now=900.0)  # peer refreshed
    assert t.handle_timer(1000.0) is None
    assert t.handle_timer(900.0 + 1768) == SessionExpired(1800)
    t.stop()
    assert t.state is TimerState.INACTIVE
    assert bye_margin(60) == 20 and bye_margin(3600) == 32


def test_missing_transition_is_named() -> None:
    t = SessionTimer()
    t.start(Negotiated(90, Refresher.UAC, False), now=0.0)
    t.handle_timer(100.0)
    with pytest.raises(SessionTimerError):
        t.start(Negotiated(90, Refresher.UAC, False), now=101.0)
