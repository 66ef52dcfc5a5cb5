"""The location service tells its observer when a user's first binding comes and its last
goes (presence open/closed, issue 17), not on every refresh."""

from __future__ import annotations

from devices.location import Binding, BindingChange, ChangeKind, LocationService


def binding(contact: str, expires_at: float = 100.0) -> Binding:
    return Binding("acme:501410", contact, expires_at, 1.0, "cid", 1, None, None, "udp",
                   "127.0.0.1", 5062, None, "ua", 0.0)


def test_observer_sees_first_and_last_binding_only() -> None:
    loc = LocationService()
    seen: list[tuple[str, bool, int]] = []
    loc.observer = lambda aor, on: seen.append((aor, on, len(loc.current(aor, 0.0))))
    a, b = binding("sip:a@127.0.0.1"), binding("sip:b@127.0.0.1", 50.0)
    loc.apply([BindingChange(ChangeKind.UPSERT, a)])
    loc.apply([BindingChange(ChangeKind.UPSERT, b), BindingChange(ChangeKind.UPSERT, a)])
    assert seen == [("acme:501410", True, 1)]  # told after the binding is in place
    assert loc.sweep(60.0) == [b]  # b expires: a remains, nothing to tell
    assert len(seen) == 1
    loc.apply([BindingChange(ChangeKind.DELETE, a)])
    assert seen[-1] == ("acme:501410", False, 0)
