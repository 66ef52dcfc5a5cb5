"""What the watchers of a user see: its dialogs (RFC 4235) and its presence inputs.

Pure and in memory: the call service reports a user's dialogs as they ring, are answered
and end; a dialog that ended is reported once as terminated (RFC 4235 3.7.1) and then
forgotten. Published presence documents (RFC 3903) are kept with their entity tag and
expiry; time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .bodies import DialogDirection, DialogInfo, DialogPhase, Party


@dataclass(frozen=True, slots=True)
class Publication:
    """One presence document a user's device published (RFC 3903 section 4)."""

    etag: str
    body: bytes
    content_type: str
    expires_at: float


class UserActivity:
    """Dialogs and publications of every watched user, by user key."""

    __slots__ = ("_dialogs", "_dnd", "_published")

    def __init__(self) -> None:
        self._dialogs: dict[str, dict[str, DialogInfo]] = {}
        self._published: dict[str, dict[str, Publication]] = {}
        self._dnd: set[str] = set()

    def ringing(self, user: str, call_id: str, direction: DialogDirection,
                remote: Party) -> DialogInfo:
        info = DialogInfo(call_id, direction, DialogPhase.EARLY, remote)
        self._dialogs.setdefault(user, {})[call_id] = info
        return info

    def answered(self, user: str, call_id: str) -> DialogInfo | None:
        """The dialog is confirmed; None when it is unknown or already confirmed."""
        info = self._dialogs.get(user, {}).get(call_id)
        if info is None or info.phase is DialogPhase.CONFIRMED:
            return None
        new = replace(info, phase=DialogPhase.CONFIRMED)
        self._dialogs[user][call_id] = new
        return new

    def ended(self, user: str, call_id: str) -> DialogInfo | None:
        """The dialog is over: marked terminated for one last report (`forget` drops it)."""
        info = self._dialogs.get(user, {}).get(call_id)
        if info is None or info.phase is DialogPhase.TERMINATED:
            return None
        new = replace(info, phase=DialogPhase.TERMINATED)
        self._dialogs[user][call_id] = new
        return new

    def forget_terminated(self, user: str) -> None:
        per = self._dialogs.get(user)
        if per is None:
            return
        for call_id in [c for c, d in per.items() if d.phase is DialogPhase.TERMINATED]:
            del per[call_id]
        if not per:
            del self._dialogs[user]

    def dialogs(self, user: str) -> list[DialogInfo]:
        return list(self._dialogs.get(user, {}).values())

    def in_call(self, user: str) -> bool:
        """Talking (a confirmed dialog): presence says "on the phone"; ringing does not."""
        return any(d.phase is DialogPhase.CONFIRMED
                   for d in self._dialogs.get(user, {}).values())

    def set_dnd(self, user: str, on: bool) -> bool:
        """Returns whether it changed."""
        if on == (user in self._dnd):
            return False
        (self._dnd.add if on else self._dnd.discard)(user)
        return True

    def dnd(self, user: str) -> bool:
        return user in self._dnd

    # -- PUBLISH (RFC 3903) --

    def publish(self, user: str, pub: Publication, replaces: str | None = None) -> None:
        per = self._published.setdefault(user, {})
        if replaces is not None:
            per.pop(replaces, None)
        per[pub.etag] = pub

    def publication(self, user: str, etag: str, now: float) -> Publication | None:
        pub = self._published.get(user, {}).get(etag)
        return pub if pub is not None and pub.expires_at > now else None

    def unpublish(self, user: str, etag: str) -> bool:
        per = self._published.get(user)
        if per is None or per.pop(etag, None) is None:
            return False
        if not per:
            del self._published[user]
        return True

    def latest_publication(self, user: str, now: float) -> Publication | None:
        """The newest unexpired document (the one that published last wins)."""
        per = self._published.get(user)
        if not per:
            return None
        live = [p for p in per.values() if p.expires_at > now]
        return live[-1] if live else None
