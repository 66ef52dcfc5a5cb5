"""Attended and semi-attended transfer (RFC 3891 Replaces, RFC 3515 REFER, RFC 5589 7),
and INVITE with Replaces, in the call service.

The transferor has two calls through the switch: X with the transferee and Y (the
consultation) with the target. Its REFER in X names, in Refer-To's embedded Replaces, its
own dialog of Y. The switch then joins the transferee and the target itself (a B2BUA never
lets the phones exchange INVITE/Replaces): the target's dialog of Y moves into X in the
transferor's place, and both of the transferor's dialogs get a BYE. When Y is an outgoing
call to the network and X is not, the roles swap (the transferee moves into Y): the call
whose record is rated goes on, so the joined talk is billed.

- Anchored media (X has a relay): the target is re-INVITEd toward X's relay leg that faced
  the transferor, and that leg is latched onto the target's answer (RELAY).
- Passthrough: the phones are re-INVITEd toward each other, RFC 3725 flow I: an offerless
  re-INVITE to the target, its offer to the transferee, the transferee's answer in the
  target's ACK (DIRECT).
- Semi-attended: Y still rings when the REFER comes; the join starts when the target answers.

After the join each party is told the other's identity: the target in the re-INVITE, the
transferee in an UPDATE (RFC 3311, no body) or its re-INVITE, both carrying
P-Asserted-Identity (RFC 3325). The pure parts are in `switch.b2bua.replaces`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialplan import DecisionKind, User
from switch.b2bua.call import CallState
from switch.b2bua.effects import Side
from switch.b2bua.replaces import (
    Join,
    JoinInput,
    JoinMode,
    JoinState,
    ReferTarget,
    continue_origin,
    find_side,
    other,
    parse_replaces,
)
from switch.call_targets import aor_key
from switch.dialog.dialog import Dialog
from switch.runtime import ServerRequest, SipRuntime
from switch.services import call_watch
from switch.sip import Request, Response, SipError, make_response, new_tag
from switch.transaction import Peer
from switch.transfer import (
    ack,
    identity,
    notify,
    offer_from_leg,
    party_number,
    party_user,
    reinvite,
    tell_identity,
)

if TYPE_CHECKING:
    from switch.calls import CallEntry, CallService, DialogRef

log = logging.getLogger("switch.transfer")


@dataclass
class ActiveJoin:
    """An attended transfer in progress: the call that goes on, `x` (its remaining party
    and the transferor on `s_x`), and the call that ends, `y` (the party that moves into
    `x`, and the transferor on `s_y`). `refer` is where the REFER came (its NOTIFYs go
    there), `consult` the consultation call (the one that may still ring)."""

    join: Join
    x: CallEntry
    s_x: Side
    y: CallEntry
    s_y: Side
    referred_by: str | None
    refer: tuple[CallEntry, Side]
    consult: CallEntry
    target_offer: bytes = b""  # DIRECT: the target's offer, for the transferee
    sent_offer: bytes = b""  # RELAY: our offer to the target on X's relay
    acks: list[tuple[Dialog, int, Peer]] = field(default_factory=list)


class AttendedTransfers:
    """REFER with Replaces and INVITE with Replaces for the call service."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls
        # 2xx to an INVITE with Replaces not ACKed yet, by Call-ID (RFC 3261 13.3.1.4: the
        # UAS core retransmits it, the transaction having ended with it)
        self.unacked: dict[str, asyncio.TimerHandle] = {}

    def _retransmit(self, call_id: str, data: bytes, peer: Peer, interval: float,
                    waited: float) -> None:
        t1, t2 = self.calls.timers.t1, self.calls.timers.t2
        if waited >= 64 * t1:
            self.unacked.pop(call_id, None)
            log.info("INVITE %s with Replaces: no ACK for the 2xx", call_id)
            return
        if waited > 0:
            self.calls.runtime.send_raw(data, peer)
        self.unacked[call_id] = self.calls.runtime.loop.call_later(
            interval, self._retransmit, call_id, data, peer, min(interval * 2, t2),
            waited + interval)

    def acked(self, call_id: str) -> None:
        """An ACK came in a dialog: a 2xx we retransmit for it is acknowledged."""
        handle = self.unacked.pop(call_id, None)
        if handle is not None:
            handle.cancel()

    # -- REFER with Replaces --

    def on_refer(self, runtime: SipRuntime, sreq: ServerRequest, ref: DialogRef,
                 target: ReferTarget) -> None:
        req = sreq.request
        calls, x, s_x = self.calls, ref.entry, ref.side
        assert target.replaces is not None

        def refuse(status: int, reason: str) -> None:
            log.info("call %s: attended transfer refused: %d %s", req.call_id, status, reason)
            runtime.respond(sreq.key, make_response(
                req, status, reason, to_tag=new_tag(),
                headers=[("Warning", f'399 wte "{reason}"')]))

        if s_x is Side.CALLEE and ref.leg != x.call.answered_leg:
            refuse(481, "Call/Transaction Does Not Exist")
            return
        transferor = party_user(calls, x, s_x)
        yref = calls.by_call_id.get(target.replaces.call_id)
        if transferor is None or yref is None or yref.entry is x:
            refuse(403, "Replaces Names No Call Of The Transferor")
            return
        y = yref.entry
        try:
            s_y = find_side(target.replaces, y.call)
        except SipError as exc:
            refuse(403, f"Replaces Does Not Match ({exc.status})")
            return
        # only the transferor's own consultation call: knowing a dialog's identifiers must
        # not be enough to take someone else's call
        mine = party_user(calls, y, s_y)
        if mine is None or mine.full_number != transferor.full_number:
            refuse(403, "Not The Transferor's Call")
            return
        if not y.call.ringing_phase and y.call.state is not CallState.ANSWERED:
            refuse(403, "Consultation Call Is Over")
            return
        current = x.call.dialog_of(s_x)
        if current is None:
            refuse(481, "Call/Transaction Does Not Exist")
            return
        # the call that goes on keeps its record counting: an outgoing call to the network
        # must not end with the join while its party talks on, unbilled, in the other
        keep_y = (y.decision.kind is DecisionKind.EXTERNAL
                  and x.decision.kind is not DecisionKind.EXTERNAL)
        stay, s_stay, gone, s_gone = (y, s_y, x, s_x) if keep_y else (x, s_x, y, s_y)
        mode = JoinMode.RELAY if stay.anchor is not None else JoinMode.DIRECT
        aj = ActiveJoin(Join.start(mode, y.call.state is CallState.ANSWERED, req.call_id),
                        stay, s_stay, gone, s_gone, req.headers.get("Referred-By"),
                        refer=(x, s_x), consult=y)
        runtime.respond(sreq.key, make_response(req, 202, to_tag=new_tag()))
        dialog, dest = current
        runtime.send_request(notify(dialog, calls.local, dest, 100, "Trying", False), dest)
        log.info("call %s: attended transfer by %s to the party of %s (%s, %s)", req.call_id,
                 transferor.full_number, y.call.a_invite.call_id, mode.name,
                 "attended" if aj.join.state is not JoinState.WAIT_ANSWER else "semi-attended")
        if aj.join.state is JoinState.WAIT_ANSWER:
            y.on_answered = lambda: self._target_answered(aj)
            y.on_ended = lambda: self._fail(aj, 487, "Request Terminated")
            # the transferor may now hang up the ringing consultation: the target rings on
            runtime.cancel_listeners[y.invite_key] = lambda: calls.perform(
                y, y.call.release_caller())
            return
        self._begin(aj)

    def _target_answered(self, aj: ActiveJoin) -> None:
        aj.consult.on_answered = None
        if aj.join.done or aj.consult.call.state is not CallState.ANSWERED:
            return
        aj.join.go(JoinInput.TARGET_ANSWERED)
        self._begin(aj)

    def _begin(self, aj: ActiveJoin) -> None:
        calls, x, y = self.calls, aj.x, aj.y
        g = y.call.dialog_of(other(aj.s_y))
        e = x.call.dialog_of(other(aj.s_x))
        if g is None or e is None:
            self._fail(aj, 481, "Call/Transaction Does Not Exist")
            return
        y.on_ended = lambda: self._fail(aj, 487, "Request Terminated")
        x.on_ended = lambda: self._fail(aj, 487, "Request Terminated")
        g_dialog, g_dest = g
        headers = list(identity(calls, x, other(aj.s_x)))
        if aj.referred_by:
            headers.append(("Referred-By", aj.referred_by))  # RFC 3892 3: passed on
        body = b""
        if aj.join.mode is JoinMode.RELAY:
            assert x.anchor is not None
            body = aj.sent_offer = offer_from_leg(x.anchor, aj.s_x, secrets.randbelow(2**31))
        invite = reinvite(self.calls, g_dialog, g_dest, tuple(headers), body)
        calls.runtime.send_request(
            invite, g_dest, lambda resp: self._target_response(aj, invite, g_dialog, g_dest,
                                                               resp))

    def _target_response(self, aj: ActiveJoin, invite: Request, dialog: Dialog, dest: Peer,
                         resp: Response) -> None:
        if resp.status < 200 or aj.join.done:
            return
        if resp.status >= 300 or not resp.body:
            if resp.status < 300:  # a 2xx without the offer we asked for: ACK, give up
                ack(self.calls, dialog, invite.cseq.seq, dest)
            self._fail(aj, resp.status if resp.status >= 300 else 488, resp.reason)
            return
        if aj.join.go(JoinInput.TARGET_OK) is JoinState.JOINED:  # RELAY
            ack(self.calls, dialog, invite.cseq.seq, dest)
            self._joined(aj, target_sdp=resp.body, transferee_sdp=None)
            return
        # DIRECT: the target's offer goes to the transferee, its answer in our ACK; each
        # keeps the o= of its own dialog (RFC 3264 8)
        aj.target_offer = continue_origin(self._sdp_of(aj.x, other(aj.s_x)), resp.body)
        aj.acks = [(dialog, invite.cseq.seq, dest)]
        x = aj.x
        e = x.call.dialog_of(other(aj.s_x))
        if e is None:
            ack(self.calls, dialog, invite.cseq.seq, dest, self._sdp_of(aj.y, other(aj.s_y)))
            self._fail(aj, 481, "Call/Transaction Does Not Exist")
            return
        e_dialog, e_dest = e
        req = reinvite(self.calls, e_dialog, e_dest, identity(self.calls, aj.y, other(aj.s_y)),
                       aj.target_offer)
        self.calls.runtime.send_request(
            req, e_dest, lambda r: self._transferee_response(aj, req, e_dialog, e_dest, r))

    def _transferee_response(self, aj: ActiveJoin, invite: Request, dialog: Dialog,
                             dest: Peer, resp: Response) -> None:
        if resp.status < 200 or aj.join.done:
            return
        g_dialog, g_seq, g_dest = aj.acks[0]
        if resp.status >= 300 or not resp.body:
            if resp.status < 300:
                ack(self.calls, dialog, invite.cseq.seq, dest)
            # the target still waits for an answer: its former one keeps it where it was
            ack(self.calls, g_dialog, g_seq, g_dest, self._sdp_of(aj.y, other(aj.s_y)))
            self._fail(aj, resp.status if resp.status >= 300 else 488, resp.reason)
            return
        answer = continue_origin(self._sdp_of(aj.y, other(aj.s_y)), resp.body)
        ack(self.calls, dialog, invite.cseq.seq, dest)
        ack(self.calls, g_dialog, g_seq, g_dest, answer)
        aj.join.go(JoinInput.TRANSFEREE_OK)
        self._joined(aj, target_sdp=aj.target_offer, transferee_sdp=answer)

    @staticmethod
    def _sdp_of(entry: CallEntry, side: Side) -> bytes:
        """The SDP the party on `side` has from us."""
        return entry.a_sdp if side is Side.CALLER else entry.b_sdp

    def _joined(self, aj: ActiveJoin, *, target_sdp: bytes, transferee_sdp: bytes | None) -> None:
        """The target and the transferee talk: release the transferor's two dialogs, move
        the target's dialog into X, and write who ended up with whom."""
        calls, x, y = self.calls, aj.x, aj.y
        now = calls.runtime.now()
        x.on_ended = y.on_ended = None
        g = y.call.dialog_of(other(aj.s_y))
        current = aj.refer[0].call.dialog_of(aj.refer[1])
        assert g is not None
        g_dialog, g_dest = g
        if current is not None:  # RFC 3515 2.4.5: the final NOTIFY, before our BYE
            calls.runtime.send_request(
                notify(current[0], calls.local, current[1], 200, "OK", True), current[1])
        target = party_number(calls, y, other(aj.s_y))
        transferee = party_number(calls, x, other(aj.s_x))
        y.record = dataclasses.replace(y.record, transferred_to=transferee)
        calls.perform(y, y.call.give_away(other(aj.s_y), now, "attended transfer"))
        # what each remaining party has from us now, for later re-INVITEs and refreshes
        if aj.join.mode is JoinMode.RELAY:
            sdp_g = aj.sent_offer
            calls.perform(x, x.call.transfer_completed(aj.s_x, g_dialog, g_dest, target,
                                                       target_sdp, now))
        else:
            sdp_g = transferee_sdp or b""
            calls.perform(x, x.call.transfer_completed(aj.s_x, g_dialog, g_dest, target, b"",
                                                       now))
            if aj.s_x is Side.CALLER:
                x.b_sdp = target_sdp
            else:
                x.a_sdp = target_sdp
        if aj.s_x is Side.CALLER:
            x.a_sdp = sdp_g
        else:
            x.b_sdp = sdp_g
        mover = party_user(calls, y, other(aj.s_y))
        if mover is not None:  # issue 17: the target's watchers see it talking, in X now
            stays = party_user(calls, x, other(aj.s_x))
            call_watch.party_joined(
                calls.watch, x, aor_key(mover), g_dialog.call_id,
                call_watch.RECIPIENT if other(aj.s_y) is Side.CALLEE else call_watch.INITIATOR,
                f"sip:{transferee}@{calls.local.host}", stays.name if stays else None)
        if aj.join.mode is JoinMode.RELAY:
            tell_identity(calls, x, other(aj.s_x), identity(calls, y, other(aj.s_y)))
        log.info("call %s: attended transfer done, %s now talks to %s (referred by %s)",
                 x.call.a_invite.call_id, transferee, target, aj.referred_by or "-")

    def _fail(self, aj: ActiveJoin, status: int, reason: str) -> None:
        if aj.join.done:
            return
        aj.join.go(JoinInput.FAILED)
        aj.x.on_ended = aj.y.on_ended = aj.consult.on_answered = None
        current = aj.refer[0].call.dialog_of(aj.refer[1])
        if current is not None:
            self.calls.runtime.send_request(
                notify(current[0], self.calls.local, current[1], status, reason, True),
                current[1])
        log.info("call %s: attended transfer failed with %d %s", aj.x.call.a_invite.call_id,
                 status, reason)
        y = aj.consult
        if y.call.caller_gone and y.call.state is CallState.ANSWERED:
            # the target answered for a transfer that cannot happen, and nobody is left in
            # its call: release it rather than leave it talking to nobody
            self.calls.perform(y, y.call.hang_up(self.calls.runtime.now(), "transfer failed"))

    # -- INVITE with Replaces --

    def on_invite(self, sreq: ServerRequest, caller: User | None) -> None:
        """A phone takes the place of a party of a call (RFC 3891): the dialog it names
        is one of the switch's; the other party of that call stays and now talks to it."""
        req = sreq.request
        calls, runtime = self.calls, self.calls.runtime

        def refuse(status: int, reason: str) -> None:
            log.info("INVITE %s with Replaces refused: %d %s", req.call_id, status, reason)
            runtime.respond(sreq.key, make_response(req, status, reason, to_tag=new_tag()))

        try:
            replaces = parse_replaces(req.headers.get("Replaces") or "")
        except SipError as exc:
            refuse(exc.status, exc.reason)
            return
        ref = calls.by_call_id.get(replaces.call_id)
        if caller is None or ref is None:
            refuse(481, "Call/Transaction Does Not Exist")  # RFC 3891 3: no match
            return
        entry = ref.entry
        try:
            side = find_side(replaces, entry.call)
        except SipError as exc:
            refuse(exc.status, exc.reason)
            return
        if entry.call.state is not CallState.ANSWERED:
            refuse(481, "Early Dialogs Are Not Replaced")
            return
        replaced = party_user(calls, entry, side)
        if replaced is None or replaced.customer is not caller.customer:
            refuse(403, "Forbidden")  # no call of another customer, nor of the network
            return
        if not req.body:
            refuse(488, "Replaces Needs An Offer")
            return
        stays = other(side)
        referred_by = req.headers.get("Referred-By")
        if entry.anchor is not None:
            answer = entry.anchor.answer_reoffer(side, req.body, nat_host=sreq.peer.host)
            self._accept_replacing(sreq, entry, side, caller, answer, referred_by)
            return
        there = entry.call.dialog_of(stays)
        if there is None:
            refuse(481, "Call/Transaction Does Not Exist")
            return
        s_dialog, s_dest = there
        headers = [("P-Asserted-Identity",
                    f'"{caller.name}" <sip:{caller.full_number}@{calls.local.host}>')]
        offer = continue_origin(self._sdp_of(entry, stays), req.body)  # RFC 3264 8
        sent = reinvite(self.calls, s_dialog, s_dest, tuple(headers), offer)

        def answered(resp: Response) -> None:
            if resp.status < 200:
                return
            if resp.status >= 300 or not resp.body:
                if resp.status < 300:
                    ack(self.calls, s_dialog, sent.cseq.seq, s_dest)
                refuse(resp.status if resp.status >= 300 else 488, resp.reason)
                return
            ack(self.calls, s_dialog, sent.cseq.seq, s_dest)
            if stays is Side.CALLER:
                entry.a_sdp = offer
            else:
                entry.b_sdp = offer
            self._accept_replacing(sreq, entry, side, caller, resp.body, referred_by,
                                   tell=False)

        runtime.send_request(sent, s_dest, answered)

    def _accept_replacing(self, sreq: ServerRequest, entry: CallEntry, side: Side,
                          caller: User, answer: bytes, referred_by: str | None,
                          tell: bool = True) -> None:
        calls, req = self.calls, sreq.request
        headers = [("Contact", calls.local.contact(sreq.peer.transport)),
                   ("Content-Type", "application/sdp")]
        ok = make_response(req, 200, to_tag=new_tag(), headers=headers, body=answer)
        calls.runtime.respond(sreq.key, ok)
        if not sreq.peer.reliable:
            self._retransmit(req.call_id, ok.to_bytes(), sreq.peer, calls.timers.t1, 0.0)
        dialog = Dialog.uas(req, ok)
        if side is Side.CALLER:
            entry.a_sdp = answer
        else:
            entry.b_sdp = answer
        calls.perform(entry, entry.call.transfer_completed(
            side, dialog, sreq.peer, caller.full_number, b"", calls.runtime.now()))
        if tell:
            tell_identity(calls, entry, other(side), (
                ("P-Asserted-Identity",
                 f'"{caller.name}" <sip:{caller.full_number}@{calls.local.host}>'),))
        log.info("call %s: %s replaced the %s (INVITE with Replaces, referred by %s)",
                 entry.call.a_invite.call_id, caller.full_number, side.value,
                 referred_by or "-")
