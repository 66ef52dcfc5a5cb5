"""Blind transfer (RFC 3515 REFER, RFC 5589 call transfer) in an anchored call.

One party (the transferor) asks, inside the call, that the other party (the transferee) be
connected to a third one (the target). Because the call's media is anchored, the switch can
do it without touching the transferee at all: it invites the target with the relay leg that
faced the transferor, and when the target answers it re-latches that leg onto the target,
tells the transferor how it went (NOTIFY with a message/sipfrag body, RFC 3515 2.4.4) and
hangs the transferor up. If the target does not answer, the call goes on as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from enum import Enum, auto
from typing import TYPE_CHECKING

from dialplan import CallContext, DecisionKind, RoutingDecision, route
from switch.b2bua.call import CallState
from switch.b2bua.effects import Side
from switch.b2bua.legs import LocalAddress, invite_for_callee
from switch.b2bua.replaces import parse_refer_to
from switch.dialog.dialog import Dialog
from switch.dialog.offeranswer import (
    MediaCapabilities,
    SdpVersioner,
    build_offer,
    negotiated_streams,
)
from switch.dialog.sdp import parse_sdp
from switch.media_service import SUPPORTED_CODECS, Anchor, _first_audio
from switch.runtime import ServerRequest, SipRuntime
from switch.sip import (
    Request,
    Response,
    SipError,
    make_response,
    new_call_id,
    new_tag,
    parse_name_addr,
    uri_user,
)
from switch.transaction import Peer

if TYPE_CHECKING:
    from switch.call_targets import Target
    from switch.calls import CallEntry, CallService

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


def offer_from_leg(anchor: Anchor, side: Side, session_id: int) -> bytes:
    """Our offer to the target on the relay leg that faced the transferor."""
    leg = anchor.relay_leg(side)
    codecs = (anchor.codec,) if anchor.codec else SUPPORTED_CODECS
    caps = MediaCapabilities(leg.local_host, leg.local_port, codecs=codecs)
    return SdpVersioner(session_id, username="wte").stamp(build_offer(caps)).to_bytes()


def latch_onto(anchor: Anchor, side: Side, answer_body: bytes,
               nat_host: str | None = None) -> None:
    """Point the transferor's relay leg at the target that answered (a new party: the
    transferor's hold, if it held before transferring, ends)."""
    leg = anchor.relay_leg(side)
    anchor.set_holding(side, False)
    answer = parse_sdp(answer_body)
    remote = _first_audio(answer)
    streams = negotiated_streams(answer, answer)
    if remote is None or not streams:
        return
    s = streams[0]
    if s.encoding.upper() in SUPPORTED_CODECS:
        leg.set_remote(remote[0], remote[1], s.payload_type, s.encoding.upper(),
                       s.telephone_event, nat_host=nat_host)


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


def target_number(decision: RoutingDecision, fallback: str) -> str:
    """The number a transfer connected the remaining party to, for the call record."""
    full = getattr(decision.target, "full_number", None)
    if isinstance(full, str) and decision.kind not in (DecisionKind.EXTERNAL,
                                                       DecisionKind.EMERGENCY):
        return full
    return decision.e164 or decision.number or fallback


class TransferHandler:
    """REFER inside a call of the call service. The transfer's own leg (the target's
    INVITE) lives here; what it changes in the call is an input of the Call
    (`Call.transfer_completed`), whose effects the call service performs."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls

    def on_refer(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        """Blind transfer asked by either party of an answered, anchored call (RFC 3515)."""
        req = sreq.request
        ref = self.calls.by_call_id.get(req.call_id)
        if ref is None or ref.entry.call.state is not CallState.ANSWERED:
            runtime.respond(sreq.key, make_response(req, 481, to_tag=new_tag()))
            return
        entry, side = ref.entry, ref.side
        call = entry.call
        refer_to = req.headers.get("Refer-To")
        if refer_to is None:
            runtime.respond(sreq.key, make_response(req, 400, "Missing Refer-To", to_tag=new_tag()))
            return
        try:
            refer_target = parse_refer_to(refer_to)
        except SipError as exc:
            runtime.respond(sreq.key, make_response(req, exc.status, exc.reason, to_tag=new_tag()))
            return
        if refer_target.replaces is not None:  # attended transfer (RFC 3891, RFC 5589 7)
            self.calls.attended.on_refer(runtime, sreq, ref, refer_target)
            return
        if entry.anchor is None or (side is Side.CALLEE and ref.leg != call.answered_leg):
            runtime.respond(sreq.key, make_response(req, 488, "Transfer Needs Anchored Media",
                                                    to_tag=new_tag()))
            return
        target_uri = parse_name_addr(refer_to).uri
        plan = self.calls.plan.plan
        transferor = entry.caller if side is Side.CALLER else (
            plan.user_by_full_number(entry.leg_users.get(ref.leg, "")) if ref.leg else None)
        if transferor is None:
            runtime.respond(sreq.key, make_response(req, 403, to_tag=new_tag()))
            return
        decision = route(plan, CallContext(transferor, None, str(target_uri),
                                           dt.datetime.now(dt.UTC),
                                           forced=self.calls.schedule_modes.forced))
        if decision.kind is DecisionKind.REJECT:
            runtime.respond(sreq.key, make_response(req, decision.status or 403,
                                                    decision.reason, to_tag=new_tag()))
            return
        groups = self.calls.resolver.targets(decision, transferor, req)
        if not groups:
            runtime.respond(sreq.key, make_response(req, 480, to_tag=new_tag()))
            return
        number = target_number(decision, uri_user(target_uri) or str(target_uri))
        self._start_transfer(entry, side, groups[0][0], number, sreq)

    def _start_transfer(self, entry: CallEntry, side: Side, target: Target, number: str,
                        sreq: ServerRequest) -> None:
        calls, call, anchor = self.calls, entry.call, entry.anchor
        assert anchor is not None
        current = call.dialog_of(side)
        if current is None:
            calls.runtime.respond(sreq.key, make_response(sreq.request, 481, to_tag=new_tag()))
            return
        dialog, dest = current
        local = calls.local
        calls.runtime.respond(sreq.key, make_response(sreq.request, 202, to_tag=new_tag()))
        calls.runtime.send_request(notify(dialog, local, dest, 100, "Trying", False), dest)
        ruri, target_dest = target.request_uri, target.dest
        invite = invite_for_callee(
            request_uri=ruri, to=target.to, caller=target.from_.with_tag(new_tag()),
            call_id=new_call_id(), local=local, dest=target_dest,
            body=offer_from_leg(anchor, side, secrets.randbelow(2**31)), max_forwards=70,
            identity_headers=target.identity_headers)

        def done(xfer: BlindTransfer, resp: Response) -> None:
            new_dialog = Dialog.uac(xfer.invite, resp)
            calls.runtime.send_raw(new_dialog.create_request(
                "ACK", local.via_for(target_dest.transport), cseq=1).to_bytes(), target_dest)
            calls.runtime.send_request(notify(dialog, local, dest, 200, "OK", True), dest)
            calls.perform(entry, call.transfer_completed(side, new_dialog, target_dest, number,
                                                         resp.body, calls.runtime.now()))
            log.info("call %s transferred to %s", call.a_invite.call_id, ruri)

        def failed(xfer: BlindTransfer, status: int, reason: str) -> None:
            calls.runtime.send_request(notify(dialog, local, dest, status, reason, True), dest)
            log.info("call %s: transfer to %s failed with %d", call.a_invite.call_id, ruri,
                     status)

        xfer = BlindTransfer(side, invite, target_dest, done, failed)
        calls.runtime.send_request(invite, target_dest, xfer.on_response)


class BlindTransfer:
    """The target's leg of one transfer, until it answers or fails."""

    def __init__(self, side: Side, invite: Request, dest: Peer,
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
