"""Requests inside a call's dialogs: re-INVITE and UPDATE (hold, resume, session
refresh), ACK, BYE and INFO (DTMF for a call application), for the call service."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from ivr.application import Digit, DigitSource
from switch.b2bua.call import CallState
from switch.b2bua.effects import Side
from switch.dialog.session_timer import uas_negotiate
from switch.runtime import ServerRequest, SipRuntime
from switch.services.dtmf_info import parse_dtmf_info
from switch.sip import make_response, new_tag

if TYPE_CHECKING:
    from switch.calls import CallService, DialogRef

log = logging.getLogger("switch.calls")

MIN_SE = 90  # RFC 4028 section 5: our Min-SE


class InDialogRequests:
    """The handlers the call service registers for in-dialog methods."""

    def __init__(self, calls: CallService) -> None:
        self.calls = calls

    def on_reinvite(self, sreq: ServerRequest) -> None:
        """A re-INVITE or UPDATE in an answered call (RFC 3261 14.2, RFC 3311).

        With anchored media the switch answers the offer itself on the relay leg facing the
        sender (hold gives recvonly, a new address re-latches the relay); session refreshes
        without a body get the SDP that side already has. Without anchoring the previous
        SDP is repeated (the far phone keeps its own media)."""
        req = sreq.request
        ref = self.calls.dialog_ref(req)
        if ref is None or ref.entry.call.state is not CallState.ANSWERED:
            self.calls.runtime.respond(sreq.key, make_response(req, 481, to_tag=new_tag()))
            return
        entry, side = ref.entry, ref.side
        body = entry.a_sdp if side is Side.CALLER else entry.b_sdp
        if req.body and entry.anchor is not None:
            body = entry.anchor.answer_reoffer(side, req.body, nat_host=sreq.peer.host)
            if side is Side.CALLER:
                entry.a_sdp = body
            else:
                entry.b_sdp = body
        headers = [("Contact", entry.call.local.contact(sreq.peer.transport))]
        if side is Side.CALLER and entry.call.session_interval is not None:
            session = uas_negotiate(req, min_se=MIN_SE, preferred=None)
            if session.negotiated is not None:
                headers.extend(session.headers)
                entry.call.refresh_session(self.calls.now(), session.negotiated.interval)
                self.calls._arm(entry)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self.calls.runtime.respond(sreq.key, make_response(req, 200, headers=headers, body=body))

    def on_update(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        if sreq.request.to.tag is None:
            # RFC 3311 5.2: UPDATE is only meaningful inside a dialog
            runtime.respond(sreq.key, make_response(sreq.request, 481, to_tag=new_tag()))
            return
        self.on_reinvite(sreq)

    def on_ack(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        self.calls.attended.acked(sreq.request.call_id)  # the 2xx to an INVITE/Replaces
        ref = self.calls.dialog_ref(sreq.request)
        if ref is not None and ref.side is Side.CALLER:
            self.calls.perform(ref.entry, ref.entry.call.on_ack(self.calls.now()))

    def on_bye(self, runtime: SipRuntime, sreq: ServerRequest) -> Awaitable[None] | None:
        ref = self.calls.dialog_ref(sreq.request)
        if ref is None:
            runtime.respond(sreq.key, make_response(sreq.request, 481, to_tag=new_tag()))
            return None
        if ref.side is Side.CALLER and ref.entry.app is not None and self.calls.settle is not None:
            return self._bye_after_settle(sreq, ref)  # voicemail (issue 13)
        runtime.respond(sreq.key, make_response(sreq.request, 200))
        call = ref.entry.call
        if ref.side is Side.CALLER:
            self.calls.perform(ref.entry, call.on_bye(Side.CALLER, self.calls.now()))
        elif call.answered_leg == ref.leg:
            self.calls.perform(ref.entry, call.on_bye(Side.CALLEE, self.calls.now()))
        return None

    async def _bye_after_settle(self, sreq: ServerRequest, ref: DialogRef) -> None:
        """The caller left an application (voicemail, issue 13): the application sees the
        hang-up and its recording ends, and its durable work (the message's file and row)
        is committed before the BYE's 200 OK, so a message is stored once the caller has
        that answer, even if the switch is killed right after."""
        calls, entry = self.calls, ref.entry
        app = entry.app
        assert app is not None and calls.settle is not None
        try:
            await app.close("caller hung up")
            await calls.settle(entry.call.a_invite.call_id)
        except Exception:
            log.exception("call %s: settling the application failed", sreq.request.call_id)
        calls.runtime.respond(sreq.key, make_response(sreq.request, 200))
        calls.perform(entry, entry.call.on_bye(Side.CALLER, calls.now()))

    def on_info(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        """SIP INFO in a call: DTMF (application/dtmf-relay, application/dtmf) for a call
        application is delivered to it as a digit of source INFO; other INFO is not relayed
        between the parties yet (RFC 6086 lets us refuse a package we do not handle)."""
        req = sreq.request
        ref = self.calls.dialog_ref(req)
        if ref is None or ref.entry.call.state is not CallState.ANSWERED:
            runtime.respond(sreq.key, make_response(req, 481, to_tag=new_tag()))
            return
        app = ref.entry.app
        digit = parse_dtmf_info(req.headers.get("Content-Type") or "", req.body)
        if app is None or digit is None:
            runtime.respond(sreq.key, make_response(req, 415, headers=[
                ("Accept", "application/dtmf-relay, application/dtmf")]))
            return
        runtime.respond(sreq.key, make_response(req, 200))
        app.deliver(Digit(digit[0], DigitSource.INFO, digit[1]))
