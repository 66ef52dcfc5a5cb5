"""Blind transfer (RFC 3515 REFER, RFC 5589 call transfer) in an anchored call.

One party (the transferor) asks, inside the call, that the other party (the transferee) be
connected to a third one (the target). Because the call's media is anchored, the switch can
do it without touching the transferee at all: it invites the target with the relay leg that
faced the transferor, and when the target answers it re-latches that leg onto the target,
tells the transferor how it went (NOTIFY with a message/sipfrag body, RFC 3515 2.4.4) and
hangs the transferor up. If the target does not answer, the call goes on as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from enum import Enum, auto
from typing import TYPE_CHECKING

from dialplan import CallContext, DecisionKind, RoutingDecision, User, route
from switch.b2bua.call import CallState
from switch.b2bua.decisions import RunApplication, handling_for
from switch.b2bua.effects import Side, Transferred
from switch.b2bua.legs import LocalAddress, invite_for_callee
from switch.b2bua.replaces import continue_origin, parse_refer_to
from switch.call_targets import aor_key
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
from switch.services import call_watch
from switch.sip import (
    NameAddr,
    Request,
    Response,
    SipError,
    SipUri,
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


def party_user(calls: CallService, entry: CallEntry, side: Side) -> User | None:
    """The plan's user on `side` of a call (the caller, or the answered callee)."""
    if side is Side.CALLER:
        return entry.caller
    leg = entry.call.answered_leg
    number = entry.leg_users.get(leg) if leg is not None else None
    return calls.plan.plan.user_by_full_number(number) if number else None


def party_number(calls: CallService, entry: CallEntry, side: Side) -> str:
    """The number naming a party in call records and identities."""
    user = party_user(calls, entry, side)
    if user is not None:
        return user.full_number
    rec = entry.record
    return (rec.caller if side is Side.CALLER else rec.callee) or "anonymous"


def identity(calls: CallService, entry: CallEntry, side: Side) -> tuple[tuple[str, str], ...]:
    """P-Asserted-Identity of a party (RFC 3325 9.1), for the one it is now connected to;
    nothing for a party that asked for privacy."""
    user = party_user(calls, entry, side)
    number = party_number(calls, entry, side)
    if number == "anonymous":
        return ()
    name = f'"{user.name}" ' if user is not None else ""
    return (("P-Asserted-Identity", f"{name}<sip:{number}@{calls.local.host}>"),)


def tell_identity(calls: CallService, entry: CallEntry, side: Side,
                  headers: tuple[tuple[str, str], ...]) -> None:
    """Tell the party on `side` who it now talks to: an UPDATE without a body (RFC 3311
    5.1) carrying P-Asserted-Identity. pjsua2 (2.15) keeps showing the dialog's remote URI
    (From/To cannot change in a dialog, RFC 3261 12.2.1.1); phones that display asserted
    identities of in-dialog requests (RFC 4916 practice) show the new party."""
    dest = entry.call.dialog_of(side)
    if dest is None or not headers or party_user(calls, entry, side) is None:
        return  # toward the network the caller-ID rules decide what is shown, not this
    dialog, peer = dest
    update = dialog.create_request("UPDATE", calls.local.via_for(peer.transport),
                                   headers=headers)
    calls.runtime.send_request(update, peer)


def reinvite(calls: CallService, dialog: Dialog, dest: Peer,
             headers: tuple[tuple[str, str], ...], body: bytes) -> Request:
    """A re-INVITE in one of the call's dialogs; the dialog adds our Contact (RFC 3261
    12.2.1.1). Without a body it asks the peer for an offer (RFC 3261 14.1, RFC 3725)."""
    return dialog.create_request("INVITE", calls.local.via_for(dest.transport),
                                 headers=headers, body=body,
                                 content_type="application/sdp" if body else None)


def ack(calls: CallService, dialog: Dialog, seq: int, dest: Peer, body: bytes = b"") -> None:
    """ACK of a 2xx (RFC 3261 13.2.2.4), with the answer when the 2xx held the offer."""
    req = dialog.create_request("ACK", calls.local.via_for(dest.transport), cseq=seq,
                                body=body, content_type="application/sdp" if body else None)
    calls.runtime.send_raw(req.to_bytes(), dest)


def presented_as(calls: CallService, entry: CallEntry, side: Side) -> NameAddr | None:
    """How the party on `side` is presented to an internal transfer target (RFC 5589 6:
    the target sees the transferee, not the transferor): a user by its internal number, a
    caller from the network as it came."""
    user = party_user(calls, entry, side)
    if user is not None:
        return NameAddr(SipUri("sip", user.customer.sip_domain, user.full_number), user.name)
    if side is Side.CALLER:
        sent = entry.call.a_invite.from_
        return NameAddr(sent.uri, sent.display)
    return None


class TransferHandler:
    """REFER inside a call of the call service. The transfer's own leg (the target's
    INVITE) lives here; what it changes in the call is an input of the Call
    (`Call.transfer_completed`), whose effects the call service performs."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls

    def transferred(self, entry: CallEntry, eff: Transferred) -> None:
        """The target took the transferor's place: its dialog now reaches this call."""
        old = self.calls.by_call_id.get(eff.old_call_id)
        if old is not None and old.entry is entry:
            del self.calls.by_call_id[eff.old_call_id]
        leg = entry.call.answered_leg if eff.replaced is Side.CALLEE else None
        self.calls.bind_dialog(eff.new_call_id, entry, eff.replaced, leg)
        entry.record = dataclasses.replace(entry.record, transferred_to=eff.target)
        call_watch.party_left(self.calls.watch, entry, eff.replaced)  # issue 17: free now
        if entry.anchor is not None and eff.sdp:
            call = entry.call
            moved = call.leg(call.answered_leg) if call.answered_leg is not None else None
            peer = call.a_peer if eff.replaced is Side.CALLER else (moved.dest if moved else None)
            # the transferee hears the target
            latch_onto(entry.anchor, eff.replaced, eff.sdp, peer.host if peer else None)

    def on_refer(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        """Blind transfer asked by either party of an answered, anchored call (RFC 3515)."""
        req = sreq.request
        ref = self.calls.dialog_ref(req)
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
        if side is Side.CALLEE and ref.leg != call.answered_leg:
            runtime.respond(sreq.key, make_response(req, 481, to_tag=new_tag()))
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
        if not groups and isinstance(handling_for(decision, self.calls.applications,
                                                  self.calls.features), RunApplication):
            # issue 16: a feature code answered by an application (park): the switch
            # invites itself on the transferor's behalf (switch/internal_calls.py)
            groups = [[self.calls.internal.target(transferor, uri_user(target_uri) or "",
                                                  entry.call.a_invite.from_)]]
        if not groups:
            runtime.respond(sreq.key, make_response(req, 480, to_tag=new_tag()))
            return
        number = target_number(decision, uri_user(target_uri) or str(target_uri))
        self._start_transfer(entry, side, groups[0][0], number, sreq)

    def _start_transfer(self, entry: CallEntry, side: Side, target: Target, number: str,
                        sreq: ServerRequest) -> None:
        calls, call, anchor = self.calls, entry.call, entry.anchor
        current = call.dialog_of(side)
        if current is None:
            calls.runtime.respond(sreq.key, make_response(sreq.request, 481, to_tag=new_tag()))
            return
        dialog, dest = current
        local = calls.local
        calls.runtime.respond(sreq.key, make_response(sreq.request, 202, to_tag=new_tag()))
        calls.runtime.send_request(notify(dialog, local, dest, 100, "Trying", False), dest)
        ruri, target_dest = target.request_uri, target.dest
        stays = Side.CALLEE if side is Side.CALLER else Side.CALLER
        # an internal target sees the transferee (RFC 5589 6); toward the network the
        # transferor's caller-ID rules stay (only the customer's own numbers go out)
        shown = presented_as(calls, entry, stays) if target.user is not None else None
        referred_by = sreq.request.headers.get("Referred-By")
        invite = invite_for_callee(
            request_uri=ruri, to=target.to, caller=(shown or target.from_).with_tag(new_tag()),
            call_id=new_call_id(), local=local, dest=target_dest,
            # passthrough: no offer, the target's comes in its 2xx for the transferee
            body=offer_from_leg(anchor, side, secrets.randbelow(2**31)) if anchor else b"",
            max_forwards=70,
            identity_headers=(*target.identity_headers,
                              *((("Referred-By", referred_by),) if referred_by else ())))

        def done(xfer: BlindTransfer, resp: Response) -> None:
            new_dialog = Dialog.uac(xfer.invite, resp)
            if anchor is not None:
                ack(calls, new_dialog, xfer.invite.cseq.seq, target_dest)
                finish(new_dialog, resp.body)
                return
            self._direct(entry, stays, new_dialog, xfer.invite.cseq.seq, target_dest,
                         resp.body, target.user, finish,
                         lambda status, reason: failed(xfer, status, reason))

        def finish(new_dialog: Dialog, sdp: bytes) -> None:
            calls.runtime.send_request(notify(dialog, local, dest, 200, "OK", True), dest)
            calls.perform(entry, call.transfer_completed(side, new_dialog, target_dest, number,
                                                         sdp, calls.runtime.now()))
            user = calls.plan.plan.user_by_full_number(target.user) if target.user else None
            if user is not None and shown is not None:  # issue 17: its watchers see it talk
                call_watch.party_joined(calls.watch, entry, aor_key(user), new_dialog.call_id,
                                        call_watch.RECIPIENT, str(shown.uri), shown.display)
            if target.user is not None and anchor is not None:  # the transferee learns
                #                                                 who it now talks to
                name = f'"{user.name}" ' if user is not None else ""
                tell_identity(calls, entry, stays, (
                    ("P-Asserted-Identity", f"{name}<sip:{target.user}@{local.host}>"),))
            log.info("call %s transferred to %s (referred by %s)", call.a_invite.call_id,
                     ruri, referred_by or "-")

        def failed(xfer: BlindTransfer, status: int, reason: str) -> None:
            calls.runtime.send_request(notify(dialog, local, dest, status, reason, True), dest)
            log.info("call %s: transfer to %s failed with %d", call.a_invite.call_id, ruri,
                     status)

        xfer = BlindTransfer(side, invite, target_dest, done, failed)
        calls.runtime.send_request(invite, target_dest, xfer.on_response)

    def _direct(self, entry: CallEntry, stays: Side, new_dialog: Dialog, seq: int,
                target_dest: Peer, offer: bytes, target_user: str | None,
                finish: Callable[[Dialog, bytes], None],
                failed: Callable[[int, str], None]) -> None:
        """Passthrough: the target's offer to the transferee in a re-INVITE (its dialog's
        o= kept, RFC 3264 8), the transferee's answer in the target's ACK (RFC 3725)."""
        calls = self.calls
        there = entry.call.dialog_of(stays)
        if there is None or not offer:
            ack(calls, new_dialog, seq, target_dest)
            calls.runtime.send_request(new_dialog.create_request(
                "BYE", calls.local.via_for(target_dest.transport)), target_dest)
            failed(488, "Not Acceptable Here")
            return
        e_dialog, e_dest = there
        had = entry.a_sdp if stays is Side.CALLER else entry.b_sdp
        offer = continue_origin(had, offer)
        headers: tuple[tuple[str, str], ...] = ()
        if target_user is not None:
            user = calls.plan.plan.user_by_full_number(target_user)
            name = f'"{user.name}" ' if user is not None else ""
            headers = (("P-Asserted-Identity", f"{name}<sip:{target_user}@{calls.local.host}>"),)
        req = reinvite(calls, e_dialog, e_dest, headers, offer)

        def answered(resp: Response) -> None:
            if resp.status < 200:
                return
            if resp.status >= 300 or not resp.body:
                if resp.status < 300:
                    ack(calls, e_dialog, req.cseq.seq, e_dest)
                ack(calls, new_dialog, seq, target_dest)
                calls.runtime.send_request(new_dialog.create_request(
                    "BYE", calls.local.via_for(target_dest.transport)), target_dest)
                failed(resp.status if resp.status >= 300 else 488, resp.reason)
                return
            ack(calls, e_dialog, req.cseq.seq, e_dest)
            ack(calls, new_dialog, seq, target_dest, resp.body)
            if stays is Side.CALLER:
                entry.a_sdp, entry.b_sdp = offer, resp.body
            else:
                entry.b_sdp, entry.a_sdp = offer, resp.body
            finish(new_dialog, b"")

        calls.runtime.send_request(req, e_dest, answered)


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
