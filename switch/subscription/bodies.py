"""NOTIFY bodies of the event packages, built once per change and shared by the watchers.

- `dialog` (RFC 4235): a full `dialog-info` document; its `version` attribute belongs to
  each subscription (4.1), so the document is built once as two byte strings around the
  version and each NOTIFY only joins them;
- `presence` (RFC 3863 PIDF, RFC 3856): basic open/closed, with a note and an RPID activity
  (RFC 4480) when the user is in a call or in do-not-disturb;
- `message-summary` (RFC 3842 section 5.2): Messages-Waiting and Voice-Message new/old.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from xml.sax.saxutils import escape, quoteattr


class DialogPhase(Enum):
    """The dialog states of RFC 4235 section 3.7.1 the switch reports."""

    TRYING = "trying"
    EARLY = "early"  # ringing: a desk phone blinks the lamp and offers pickup
    CONFIRMED = "confirmed"  # talking
    TERMINATED = "terminated"


class DialogDirection(Enum):
    """RFC 4235 4.1.1: whether the watched user placed (initiator) or received the call."""

    INITIATOR = "initiator"
    RECIPIENT = "recipient"


@dataclass(frozen=True, slots=True)
class Party:
    """The other side of a watched user's call (RFC 4235 4.1.6.1 identity)."""

    uri: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class DialogInfo:
    """One dialog of a watched user, as reported in `dialog-info`."""

    call_id: str
    direction: DialogDirection
    phase: DialogPhase
    remote: Party
    local_tag: str | None = None
    remote_tag: str | None = None


def _identity(tag: str, party: Party) -> str:
    display = f" display={quoteattr(party.display)}" if party.display else ""
    uri = escape(party.uri)
    return (f"<{tag}><identity{display}>{uri}</identity>"
            f"<target uri={quoteattr(party.uri)}/></{tag}>")


def dialog_info_body(entity: str, dialogs: list[DialogInfo]) -> tuple[bytes, bytes]:
    """A full dialog-info document for `entity`, split around its version (RFC 4235 4.1):
    `head + str(version).encode() + tail` is the body of one subscription's NOTIFY."""
    parts: list[str] = []
    for d in dialogs:
        attrs = f"id={quoteattr(d.call_id)} call-id={quoteattr(d.call_id)}"
        if d.local_tag:
            attrs += f" local-tag={quoteattr(d.local_tag)}"
        if d.remote_tag:
            attrs += f" remote-tag={quoteattr(d.remote_tag)}"
        attrs += f' direction="{d.direction.value}"'
        parts.append(f"<dialog {attrs}><state>{d.phase.value}</state>"
                     f"{_identity('remote', d.remote)}"
                     f"<local><identity>{escape(entity)}</identity></local></dialog>\r\n")
    head = ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
            '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="')
    tail = (f'" state="full" entity={quoteattr(entity)}>\r\n' + "".join(parts)
            + "</dialog-info>\r\n")
    return head.encode(), tail.encode()


def with_version(parts: tuple[bytes, bytes], version: int) -> bytes:
    return parts[0] + str(version).encode() + parts[1]


@dataclass(frozen=True, slots=True)
class PresenceSnapshot:
    """What presence reports of a user: registered devices, a call, do-not-disturb."""

    registered: bool
    on_the_phone: bool = False
    dnd: bool = False

    @property
    def basic(self) -> str:
        """RFC 3863 4.1.4: open when the user can be reached at all (a device registered)."""
        return "open" if self.registered else "closed"

    @property
    def note(self) -> str | None:
        if not self.registered:
            return "Offline"
        if self.dnd:
            return "Do not disturb"
        if self.on_the_phone:
            return "On the phone"
        return None


def pidf_body(entity: str, snapshot: PresenceSnapshot) -> bytes:
    """A PIDF document (RFC 3863) with one tuple; RPID activities (RFC 4480) for a call
    (on-the-phone) and do-not-disturb (busy), in a data-model person element (RFC 4479)."""
    note = snapshot.note
    note_xml = f"<note>{escape(note)}</note>" if note else ""
    activity = ("busy" if snapshot.dnd else "on-the-phone" if snapshot.on_the_phone
                else None)
    person = ""
    if activity is not None and snapshot.registered:
        person = (f'<dm:person id="p1"><rpid:activities><rpid:{activity}/>'
                  f"</rpid:activities>{note_xml}</dm:person>\r\n")
    text = ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
            ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
            ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
            f" entity={quoteattr(entity)}>\r\n"
            f'<tuple id="t1"><status><basic>{snapshot.basic}</basic></status>'
            f"{note_xml}</tuple>\r\n{person}</presence>\r\n")
    return text.encode()


def message_summary_body(account: str, new: int, old: int) -> bytes:
    """RFC 3842 section 5.2: `Messages-Waiting` is yes when a new message waits; the
    Voice-Message line counts new/old voice messages."""
    if new < 0 or old < 0:
        raise ValueError("message counts cannot be negative")
    waiting = "yes" if new > 0 else "no"
    return (f"Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\n"
            f"Voice-Message: {new}/{old} (0/0)\r\n").encode()
