"""Callback on busy (*37), the pure book (ivr/busy_callback.py)."""

from __future__ import annotations

from ivr.busy_callback import REQUEST_WINDOW, SERVE_WINDOW, BusyCallbackBook, Callback


def test_a_request_waits_for_both_parties_to_be_free() -> None:
    book = BusyCallbackBook()
    book.busy("acme", "501410", "501411", 0.0)
    assert book.request("acme", "501410", 5.0) == "501411"
    assert book.due({"acme:501411"}, 6.0) == []  # the user it wanted is still busy
    assert book.due({"acme:501410"}, 7.0) == []  # the caller is in a call
    assert book.due(set(), 8.0) == [Callback("acme", "501410", "501411")]
    assert book.due(set(), 9.0) == []  # being served: not twice
    book.finished(Callback("acme", "501410", "501411"))
    assert book.pending() == 0


def test_no_busy_call_or_an_old_one_is_refused() -> None:
    book = BusyCallbackBook()
    assert book.request("acme", "501410", 0.0) is None
    book.busy("acme", "501410", "501411", 0.0)
    assert book.request("acme", "501410", REQUEST_WINDOW + 1) is None
    assert book.request("other", "501410", 1.0) is None  # customers never mix


def test_a_request_not_served_in_time_lapses() -> None:
    book = BusyCallbackBook()
    book.busy("acme", "501410", "501411", 0.0)
    book.request("acme", "501410", 1.0)
    assert book.due({"acme:501411"}, SERVE_WINDOW + 2) == []
    assert book.pending() == 0
