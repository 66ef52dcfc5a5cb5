"""Blind transfer (RFC 3515 REFER, RFC 5589 call transfer) in an anchored call.

One party (the transferor) asks, inside the call, that the other party (the transferee) be
connected to a third one (the target). Because the call's media is anchored, the switch can
do it without touching the transferee at all: it invites the target with the relay leg that
faced the transferor, and when the target answers it re-latches that leg onto the target,
tells the transferor how it went (NOTIFY with a message/sipfrag body, RFC 3515 2.4.4) and
hangs the transferor up. If the target does not answer, the call goes on as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum, auto

from switch.b2bua.legs import LocalAddress
from switch.dialog.dialog import Dialog
from switch.dialog.offeranswer import (
    MediaCapabilities,
    SdpVersioner,
    build_offer,
    negotiated_streams,
)
from switch.dialog.sdp import parse_sdp
from switch.media_service import SUPPORTED_CODECS, Anchor, _first_audio
from switch.sip import Request, Response
from switch.transaction import Peer

log = logging.getLogger("switch.transfer")


class TransferState(Enum):
    TRYING = auto()
    DONE = auto()
    FAILED = auto()


TRANSITIONS: dict[tuple[TransferState, str], TransferState] = {
    (TransferState.TRYING, "answered"): TransferState.DONE,
    (TransferState.TRYING, "failed"): TransferState.FAILED,
}


class TransferError(Exception):
    """An input the transfer's state does not accept."""


def offer_from_leg(anchor: Anchor, side: str, session_id: int) -> bytes:
    """Our offer to the target on the relay leg that faced the transferor."""
    leg = anchor.relay.leg_a if side == "a" else anchor.relay.leg_b
    codecs = (anchor.codec,) if anchor.codec else SUPPORTED_CODECS
    caps = MediaCapabilities(leg.local_host, leg.local_port, codecs=codecs)
    return SdpVersioner(session_id, username="wte").stamp(build_offer(caps)).to_bytes()


def latch_onto(anchor: Anchor, side: str, answer_body: bytes) -> None:
    """Point the transferor's relay leg at the target that answered."""
    leg = anchor.relay.leg_a if side == "a" else anchor.relay.leg_b
    answer = parse_sdp(answer_body)
    remote = _first_audio(answer)
    streams = negotiated_streams(answer, answer)
    if remote is None or not streams:
        return
    s = streams[0]
    if s.encoding.upper() in SUPPORTED_CODECS:
        leg.set_remote(remote[0], remote[1], s.payload_type, s.encoding.upper(),
                       s.telephone_event)


def notify(dialog: Dialog, local: LocalAddress, dest: Peer, status: int, reason: str,
           final: bool) -> Request:
    """NOTIFY of the REFER's implicit subscription (RFC 3515 section 2.4.4)."""
    state = "terminated;reason=noresource" if final else "active;expires=60"
    body = f"SIP/2.0 {status} {reason}\r\n".encode()
    return dialog.create_request(
        "NOTIFY", local.via_for(dest.transport),
        headers=(("Event", "refer"), ("Subscription-State", state)),
        body=body, content_type="message/sipfrag;version=2.0",
    )


class BlindTransfer:
    """The target's leg of one transfer, until it answers or fails."""

    def __init__(self, side: str, invite: Request, dest: Peer,
                 on_done: Callable[[BlindTransfer, Response], None],
                 on_failed: Callable[[BlindTransfer, int, str], None]) -> None:
        self.side = side
        self.invite = invite
        self.dest = dest
        self.state = TransferState.TRYING
        self.dialog: Dialog | None = None
        self._on_done = on_done
        self._on_failed = on_failed

    def _go(self, event: str) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            raise TransferError(f"{self.state.name} does not accept {event}")
        log.debug("transfer %s: %s --%s--> %s", self.invite.call_id, self.state.name, event,
                  nxt.name)
        self.state = nxt

    def on_response(self, resp: Response) -> None:
        if self.state is not TransferState.TRYING or resp.status < 200:
            return
        if resp.status < 300:
            self._go("answered")
            self._on_done(self, resp)
        else:
            self._go("failed")
            self._on_failed(self, resp.status, resp.reason)
