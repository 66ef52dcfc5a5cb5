"""Attended transfer, pure parts: the Replaces header (RFC 3891), the Refer-To that carries
it (RFC 3515 2.1, RFC 5589 7), matching it to one of the switch's dialogs, and the states
of joining the two remaining parties.

A B2BUA holds two dialogs per call, so the dialog a phone names in `Replaces` is always one
between that phone and the switch: its Call-ID, the tag of the switch (`to-tag`, the side
that receives the Replaces, RFC 3891 section 3) and the phone's tag (`from-tag`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import Enum, auto
from urllib.parse import unquote

from switch.dialog.sdp import parse_sdp
from switch.sip import SipError, SipUri, parse_name_addr

from .call import Call, CallState
from .effects import Side

log = logging.getLogger("switch.b2bua.replaces")


@dataclass(frozen=True, slots=True)
class Replaces:
    """`Replaces: call-id;to-tag=..;from-tag=..[;early-only]` (RFC 3891 section 6.1)."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


def parse_replaces(value: str) -> Replaces:
    """Parse a Replaces value; RFC 3891 6.1 makes to-tag and from-tag mandatory (400)."""
    parts = [p.strip(" \t") for p in value.split(";")]
    call_id = parts[0]
    if not call_id or any(c in call_id for c in " \t<>\""):
        raise SipError(400, "Bad Replaces Call-ID")
    params: dict[str, str | None] = {}
    for part in parts[1:]:
        if not part:
            continue
        name, sep, val = part.partition("=")
        params[name.strip().lower()] = val.strip() if sep else None
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not to_tag or not from_tag:
        raise SipError(400, "Replaces Needs to-tag and from-tag")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


@dataclass(frozen=True, slots=True)
class ReferTarget:
    """Where a REFER sends the transferee: the URI without its headers, and the embedded
    Replaces (attended transfer) if any (RFC 3515 2.1: Refer-To URI headers become headers
    of the triggered INVITE)."""

    uri: str
    replaces: Replaces | None = None
    require_replaces: bool = False


def uri_headers(raw: str) -> dict[str, str]:
    """The `?h=v&h2=v2` part of a SIP URI, names lowercased, values %-unescaped (RFC 3261
    19.1.1: the header values are escaped in a URI)."""
    out: dict[str, str] = {}
    for item in raw.split("&"):
        if not item:
            continue
        name, _, val = item.partition("=")
        out[unquote(name).strip().lower()] = unquote(val)
    return out


def parse_refer_to(value: str) -> ReferTarget:
    """Parse a Refer-To header value (400 when unreadable)."""
    try:
        uri = parse_name_addr(value).uri
    except SipError as exc:
        raise SipError(400, "Bad Refer-To") from exc
    if not isinstance(uri, SipUri) or not uri.headers:
        return ReferTarget(str(uri))
    headers = uri_headers(uri.headers)
    bare = SipUri(uri.scheme, uri.host, uri.user, uri.password, uri.port, uri.params, "")
    raw = headers.get("replaces")
    replaces = parse_replaces(raw) if raw is not None else None
    require = "replaces" in [h.strip().lower() for h in headers.get("require", "").split(",")]
    return ReferTarget(str(bare), replaces, require)


@dataclass(frozen=True, slots=True)
class DialogKey:
    """One of the switch's dialogs as a Replaces names it: our tag is the local one."""

    call_id: str
    local_tag: str
    remote_tag: str
    confirmed: bool


def dialog_key(call: Call, side: Side) -> DialogKey | None:
    """The switch's dialog with the party on `side` of `call`: the caller's (early while it
    rings) or the answered callee's. After a transfer the side's dialog is the new party's."""
    if side is Side.CALLER:
        if call.a_dialog is not None:
            d = call.a_dialog
            return DialogKey(d.call_id, d.local_tag, d.remote_tag,
                             call.state is CallState.ANSWERED)
        if call.ringing_phase:
            return DialogKey(call.a_invite.call_id, call.a_to_tag,
                             call.a_invite.from_.tag or "", False)
        return None
    leg = call.answered
    if leg is None or leg.dialog is None:
        return None
    d = leg.dialog
    return DialogKey(d.call_id, d.local_tag, d.remote_tag, call.state is CallState.ANSWERED)


def matches(replaces: Replaces, key: DialogKey) -> bool:
    """RFC 3891 section 3: Call-ID, to-tag against our local tag, from-tag against the
    remote one."""
    return (replaces.call_id == key.call_id and replaces.to_tag == key.local_tag
            and replaces.from_tag == key.remote_tag)


def find_side(replaces: Replaces, call: Call) -> Side:
    """Which party of `call` the Replaces names. 481 when none matches (RFC 3891 3: "no
    match"), 486 when an early-only Replaces names a confirmed dialog (RFC 3891 3), 603
    for a call that is over (a terminated dialog is never replaced)."""
    if call.state is CallState.ENDED:
        raise SipError(603, "Replaced Call Is Over")
    for side in (Side.CALLER, Side.CALLEE):
        key = dialog_key(call, side)
        if key is not None and matches(replaces, key):
            if replaces.early_only and key.confirmed:
                raise SipError(486, "Busy Here")
            return side
    raise SipError(481, "Replaced Dialog Does Not Exist")


def continue_origin(previous: bytes, new: bytes) -> bytes:
    """`new` as the next description of a dialog whose party last had `previous` from us:
    RFC 3264 8 keeps the o= username and session id of a dialog and raises the version,
    so a B2BUA passing another phone's SDP into the dialog restamps its origin (a phone may
    otherwise take it for the same description and keep its media where it was)."""
    if not previous or not new:
        return new
    try:
        old, fresh = parse_sdp(previous), parse_sdp(new)
    except SipError:
        return new
    origin = dataclasses.replace(fresh.origin, username=old.origin.username,
                                 session_id=old.origin.session_id,
                                 session_version=max(old.origin.session_version,
                                                     fresh.origin.session_version) + 1)
    return dataclasses.replace(fresh, origin=origin).to_bytes()


def other(side: Side) -> Side:
    return Side.CALLEE if side is Side.CALLER else Side.CALLER


class JoinMode(Enum):
    """How the two remaining parties are put together."""

    RELAY = auto()  # anchored: the target is re-INVITEd toward the transferee's relay leg
    DIRECT = auto()  # passthrough: 3pcc (RFC 3725 flow I) between the two phones


class JoinState(Enum):
    WAIT_ANSWER = auto()  # semi-attended: the target still rings
    OFFER_FROM_TARGET = auto()  # re-INVITE without SDP to the target (DIRECT), or with
    #                             the relay's offer (RELAY)
    OFFER_TO_TRANSFEREE = auto()  # DIRECT: the target's offer re-INVITEd to the transferee
    JOINED = auto()
    FAILED = auto()


class JoinInput(Enum):
    TARGET_ANSWERED = auto()
    TARGET_OK = auto()
    TRANSFEREE_OK = auto()
    FAILED = auto()


JOIN_TRANSITIONS: dict[tuple[JoinMode, JoinState, JoinInput], JoinState] = {
    **{(mode, JoinState.WAIT_ANSWER, JoinInput.TARGET_ANSWERED): JoinState.OFFER_FROM_TARGET
       for mode in JoinMode},
    (JoinMode.RELAY, JoinState.OFFER_FROM_TARGET, JoinInput.TARGET_OK): JoinState.JOINED,
    (JoinMode.DIRECT, JoinState.OFFER_FROM_TARGET, JoinInput.TARGET_OK):
        JoinState.OFFER_TO_TRANSFEREE,
    (JoinMode.DIRECT, JoinState.OFFER_TO_TRANSFEREE, JoinInput.TRANSFEREE_OK): JoinState.JOINED,
    **{(mode, state, JoinInput.FAILED): JoinState.FAILED
       for mode in JoinMode
       for state in (JoinState.WAIT_ANSWER, JoinState.OFFER_FROM_TARGET,
                     JoinState.OFFER_TO_TRANSFEREE)},
}


class JoinError(Exception):
    """An input the join's state does not accept (our bug, never the peer's)."""


@dataclass
class Join:
    """One attended transfer in progress: the transferor's call `transferor_side` (the
    transferee stays in it) and the consultation call whose other party is the target."""

    mode: JoinMode
    state: JoinState
    label: str = ""

    @classmethod
    def start(cls, mode: JoinMode, target_answered: bool, label: str = "") -> Join:
        first = JoinState.OFFER_FROM_TARGET if target_answered else JoinState.WAIT_ANSWER
        return cls(mode, first, label)

    def go(self, inp: JoinInput) -> JoinState:
        nxt = JOIN_TRANSITIONS.get((self.mode, self.state, inp))
        if nxt is None:
            raise JoinError(f"{self.mode.name} join in {self.state.name} does not accept "
                            f"{inp.name}")
        log.debug("join %s: %s --%s--> %s", self.label, self.state.name, inp.name, nxt.name)
        self.state = nxt
        return nxt

    @property
    def done(self) -> bool:
        return self.state in (JoinState.JOINED, JoinState.FAILED)
