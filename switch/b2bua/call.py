"""A call: the caller's leg (A) and one or more callee legs (B), as a pure state machine.

The Call consumes what happened (responses, CANCEL, ACK, BYE, timers) with `now` and returns
Effects for its adapter. Forking: every B leg rings at once; the first 2xx wins and the
others are cancelled (RFC 3261 16.7 behaviour, done by a B2BUA). The 2xx to the caller is
retransmitted by the Call until the ACK arrives (RFC 3261 13.3.1.4), since the INVITE
server transaction ends when the 2xx passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from switch.dialog.dialog import Dialog
from switch.sip import NameAddr, Request, Response, SipError, make_response, new_tag
from switch.transaction import Peer

from .decisions import AnswerWith, Exhausted, ExhaustedPolicy, GiveUp, RingMore, give_up
from .effects import (
    Answered,
    CalleeMedia,
    Disposition,
    Effect,
    Ended,
    LegId,
    RespondCaller,
    SendRequest,
    SendStateless,
    Side,
    StartApplication,
    Transferred,
)
from .legs import ALLOW, LocalAddress, cancel_for

log = logging.getLogger("switch.b2bua")


class CallState(Enum):
    CALLING = auto()
    RINGING = auto()
    ANSWERED = auto()
    ENDED = auto()


class CallInput(Enum):
    PROVISIONAL = auto()
    ANSWER = auto()
    ALL_FAILED = auto()
    CANCEL = auto()
    RING_TIMEOUT = auto()
    BYE = auto()
    ACK_TIMEOUT = auto()


TRANSITIONS: dict[tuple[CallState, CallInput], CallState] = {
    (CallState.CALLING, CallInput.PROVISIONAL): CallState.RINGING,
    (CallState.RINGING, CallInput.PROVISIONAL): CallState.RINGING,
    (CallState.CALLING, CallInput.ANSWER): CallState.ANSWERED,
    (CallState.RINGING, CallInput.ANSWER): CallState.ANSWERED,
    (CallState.CALLING, CallInput.ALL_FAILED): CallState.ENDED,
    (CallState.RINGING, CallInput.ALL_FAILED): CallState.ENDED,
    (CallState.CALLING, CallInput.CANCEL): CallState.ENDED,
    (CallState.RINGING, CallInput.CANCEL): CallState.ENDED,
    (CallState.CALLING, CallInput.RING_TIMEOUT): CallState.ENDED,
    (CallState.RINGING, CallInput.RING_TIMEOUT): CallState.ENDED,
    (CallState.ANSWERED, CallInput.BYE): CallState.ENDED,
    (CallState.ANSWERED, CallInput.ACK_TIMEOUT): CallState.ENDED,
}


class CallTransitionError(Exception):
    """An input the call's state does not accept (a bug in the caller, never a peer's fault)."""


class LegState(Enum):
    TRYING = auto()
    EARLY = auto()
    ANSWERED = auto()
    FAILED = auto()
    CANCELLED = auto()


@dataclass(slots=True)
class Leg:
    id: LegId
    invite: Request
    dest: Peer
    state: LegState = LegState.TRYING
    final_status: int = 0
    dialog: Dialog | None = None
    ack: bytes = b""


# RFC 3261 16.7 step 6 picks the "best" final response; busy and decline win over errors.
_PREFERENCE = (600, 486, 603, 480, 404, 408)


def best_final(statuses: list[int]) -> int:
    for wanted in _PREFERENCE:
        if wanted in statuses:
            return wanted
    return min(statuses) if statuses else 480


def disposition_for(status: int) -> Disposition:
    if status in (486, 600):
        return Disposition.BUSY
    if status in (603, 403, 488):
        return Disposition.REJECTED
    if status == 480:
        return Disposition.NO_ANSWER
    if status == 408:
        return Disposition.UNREACHABLE
    return Disposition.FAILED


@dataclass(slots=True)
class Call:
    a_invite: Request
    a_peer: Peer
    local: LocalAddress
    started_at: float
    ring_timeout: float
    # the SDP the caller gets for a callee's (pure: the media anchor's addresses put in);
    # latching the relay onto the callee is a `CalleeMedia` effect
    answer_sdp: Callable[[LegId, bytes], bytes]
    t1: float = 0.5  # RFC 3261 timers for the 2xx retransmissions (13.3.1.4): configured
    t2: float = 4.0
    # what happens when every leg failed or nobody answered: the forwarding/voicemail seam
    exhausted_policy: ExhaustedPolicy = give_up
    state: CallState = CallState.CALLING
    a_to_tag: str = field(default_factory=new_tag)
    legs: list[Leg] = field(default_factory=list)
    answered_leg: LegId | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    # the caller's dialog (RFC 3261 12.1.1), built from the INVITE and our 2xx the first
    # time it is needed (`a_dialog`): most calls end with the caller's BYE and never use it
    _a_dialog: Dialog | None = None
    _a_dialog_due: bool = False
    _a_ok: Response | None = None  # our 2xx to the caller
    _ring_deadline: float | None = None
    _retransmit_at: float | None = None
    _retransmit_interval: float = 0.0
    _ack_deadline: float | None = None
    _final_to_a: bytes = b""  # serialised at its first retransmission (see handle_timer)
    # RFC 4028 session timer agreed with the caller (it refreshes; we watch), or None
    # hunting (sequential, round robin, longest idle): the next groups of legs to ring,
    # each for `hunt_step` seconds, while the current group rings
    hunt_steps: list[list[tuple[Request, Peer]]] = field(default_factory=list)
    hunt_step: float = 15.0
    _hunt_deadline: float | None = None
    # an application answers instead (AnswerWith): the cancelled legs' 487s change nothing
    diverted: bool = False
    # the caller cancelled while its call was being handed to a party of another call
    # (semi-attended transfer): the legs ring on, an answer goes to that other call
    caller_gone: bool = False
    session_headers: tuple[tuple[str, str], ...] = ()
    session_interval: int | None = None
    _session_deadline: float | None = None

    def __post_init__(self) -> None:
        self._ring_deadline = self.started_at + self.ring_timeout

    @property
    def a_dialog(self) -> Dialog | None:
        """The dialog with the caller, once the caller has a 2xx (or one was adopted)."""
        ok = self._a_ok
        if self._a_dialog_due and ok is not None:
            self._a_dialog_due = False
            try:
                self._a_dialog = Dialog.uas(self.a_invite, ok)
            except SipError as exc:  # on_invite checked the Contact: not expected
                log.warning("call %s: no dialog with the caller (%s)", self.a_invite.call_id,
                            exc.reason)
        return self._a_dialog

    @a_dialog.setter
    def a_dialog(self, dialog: Dialog | None) -> None:
        self._a_dialog_due = False
        self._a_dialog = dialog

    # -- state --

    def _go(self, inp: CallInput) -> None:
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise CallTransitionError(f"{self.state.name} does not accept {inp.name}")
        log.debug("call %s: %s --%s--> %s", self.a_invite.call_id, self.state.name, inp.name,
                  nxt.name)
        self.state = nxt

    @property
    def ringing_phase(self) -> bool:
        return self.state in (CallState.CALLING, CallState.RINGING)

    # -- legs --

    def add_leg(self, invite: Request, dest: Peer) -> list[Effect]:
        leg = Leg(LegId(len(self.legs)), invite, dest)
        self.legs.append(leg)
        return [SendRequest(invite, dest, Side.CALLEE, leg.id)]

    def leg(self, leg_id: LegId) -> Leg | None:
        return self.legs[leg_id.index] if 0 <= leg_id.index < len(self.legs) else None

    @property
    def answered(self) -> Leg | None:
        return self.leg(self.answered_leg) if self.answered_leg is not None else None

    def start_hunt(self, steps: list[list[tuple[Request, Peer]]], step_seconds: float,
                   now: float) -> list[Effect]:
        """Ring `steps[0]` now and each next group when the current one gave up or rang for
        `step_seconds`; the whole hunt may last its full length, past the ring timeout."""
        if not steps:
            return []
        self.hunt_step = step_seconds
        self.hunt_steps = list(steps[1:])
        if self._ring_deadline is not None:
            self._ring_deadline = max(self._ring_deadline, now + step_seconds * len(steps))
        return self._ring_group(steps[0], now)

    def _ring_group(self, group: list[tuple[Request, Peer]], now: float) -> list[Effect]:
        self._hunt_deadline = now + self.hunt_step if self.hunt_steps else None
        out: list[Effect] = []
        for invite, dest in group:
            out.extend(self.add_leg(invite, dest))
        return out

    def _next_group(self, now: float) -> list[Effect]:
        out = self._cancel_others(None)
        out.extend(self._ring_group(self.hunt_steps.pop(0), now))
        return out

    def leg_by_call_id(self, call_id: str) -> Leg | None:
        for leg in self.legs:
            if leg.invite.call_id == call_id:
                return leg
        return None

    def _cancel_others(self, keep: LegId | None) -> list[Effect]:
        out: list[Effect] = []
        for leg in self.legs:
            if leg.id != keep and leg.state in (LegState.TRYING, LegState.EARLY):
                leg.state = LegState.CANCELLED
                out.append(SendRequest(cancel_for(leg.invite), leg.dest, Side.CALLEE))
        return out

    # -- inputs --

    def on_response(self, leg_id: LegId, resp: Response, now: float) -> list[Effect]:
        leg = self.leg(leg_id)
        if leg is None:
            return []
        if resp.status < 200:
            return self._on_provisional(leg, resp)
        if resp.status < 300:
            return self._on_success(leg, resp, now)
        return self._on_failure(leg, resp.status, now)

    def _on_provisional(self, leg: Leg, resp: Response) -> list[Effect]:
        if resp.status == 100 or not self.ringing_phase or leg.state is LegState.CANCELLED:
            return []
        if self.caller_gone:
            leg.state = LegState.EARLY
            return []
        leg.state = LegState.EARLY
        self._go(CallInput.PROVISIONAL)
        body = self.answer_sdp(leg.id, resp.body) if resp.body else b""
        headers: list[tuple[str, str]] = []
        if body:
            headers.append(("Content-Type", "application/sdp"))
        headers.append(("Contact", self.local.contact(self.a_peer.transport)))
        out = make_response(self.a_invite, resp.status, resp.reason, to_tag=self.a_to_tag,
                            headers=headers, body=body)
        media: list[Effect] = [CalleeMedia(leg.id, resp.body)] if resp.body else []
        return [*media, RespondCaller(out)]

    def _ack_for(self, leg: Leg, resp: Response) -> bytes:
        """The dialog with the callee (RFC 3261 12.1.2) and the ACK for its 2xx (13.2.2.4)."""
        try:
            dialog = Dialog.uac(leg.invite, resp)
        except SipError:
            # a 2xx without a usable Contact: target the Request-URI we sent, still ACK it
            patched = resp.replace(headers=resp.headers.replace("Contact", f"<{leg.invite.uri}>"))
            dialog = Dialog.uac(leg.invite, patched)
        leg.dialog = dialog
        via = self.local.via_for(leg.dest.transport)
        return dialog.ack_bytes(via, leg.invite.cseq.seq)

    def _on_success(self, leg: Leg, resp: Response, now: float) -> list[Effect]:
        if leg.ack and leg.state is LegState.ANSWERED:
            return [SendStateless(leg.ack, leg.dest)]  # a retransmitted 2xx: ACK again
        leg.ack = self._ack_for(leg, resp)
        out: list[Effect] = [SendStateless(leg.ack, leg.dest)]
        if not self.ringing_phase:
            # a late 2xx from another fork, or after the caller left: ACK then BYE it
            leg.state = LegState.CANCELLED
            assert leg.dialog is not None
            out.append(SendRequest(self._bye(leg.dialog, leg.dest), leg.dest, Side.CALLEE))
            return out
        leg.state = LegState.ANSWERED
        self.answered_leg = leg.id
        self.answered_at = now
        out.extend(self._cancel_others(leg.id))
        self._go(CallInput.ANSWER)
        body = self.answer_sdp(leg.id, resp.body) if resp.body else b""
        if resp.body:
            out.append(CalleeMedia(leg.id, resp.body))
        if self.caller_gone:  # answered for the call it is handed to: nothing to the caller
            self._clear_deadlines()
            out.append(Answered(leg.id, resp))
            return out
        out.extend(self._answer_caller(body, now, leg.id, resp))
        return out

    def answer_locally(self, body: bytes, now: float) -> list[Effect]:
        """The switch itself answers the caller (test services, prompts): no B leg."""
        if not self.ringing_phase:
            return []
        self._go(CallInput.ANSWER)
        self.answered_at = now
        return self._answer_caller(body, now, None, None)

    def _answer_caller(self, body: bytes, now: float, leg: LegId | None,
                       resp: Response | None) -> list[Effect]:
        headers = [("Contact", self.local.contact(self.a_peer.transport)),
                   ("Allow", ALLOW),
                   *self.session_headers]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self._arm_session(now)
        ok = make_response(self.a_invite, 200, "OK", to_tag=self.a_to_tag, headers=headers,
                           body=body)
        # the dialog is built when first needed; the bytes, for a retransmission
        self._a_ok, self._a_dialog, self._a_dialog_due = ok, None, True
        self._final_to_a = b""
        if not self.a_peer.reliable:
            self._retransmit_interval = self.t1
            self._retransmit_at = now + self.t1
        self._ack_deadline = now + 64 * self.t1
        return [RespondCaller(ok), Answered(leg, resp or ok)]

    def _on_failure(self, leg: Leg, status: int, now: float) -> list[Effect]:
        if leg.state in (LegState.TRYING, LegState.EARLY):
            leg.state = LegState.FAILED
        leg.final_status = status
        if not self.ringing_phase or self.diverted:
            return []
        if any(lg.state in (LegState.TRYING, LegState.EARLY) for lg in self.legs):
            return []
        if self.hunt_steps:
            return self._ring_group(self.hunt_steps.pop(0), now)
        final = best_final([lg.final_status for lg in self.legs if lg.final_status >= 300])
        return self._exhausted(Exhausted(final, no_answer=False), now)

    def _exhausted(self, exhausted: Exhausted, now: float) -> list[Effect]:
        """Every leg failed or the ring timeout ran out: the policy says what comes next
        (ring more legs, e.g. forwarding; or give up with a status)."""
        # a call handed over (semi-attended transfer) is not forwarded nor sent to voicemail
        step = give_up(exhausted) if self.caller_gone else self.exhausted_policy(exhausted)
        if isinstance(step, RingMore) and step.groups:
            out = self._cancel_others(None)
            self.hunt_step = step.ring_seconds
            self.hunt_steps = [list(g) for g in step.groups[1:]]
            self._ring_deadline = now + step.ring_seconds * len(step.groups)
            out.extend(self._ring_group(list(step.groups[0]), now))
            return out
        if isinstance(step, AnswerWith):
            # the caller keeps ringing until the adapter answers with the application
            out = self._cancel_others(None)
            self.diverted = True
            self.hunt_steps = []
            self._ring_deadline = self._hunt_deadline = None
            log.info("call %s: %s, answering with %s", self.a_invite.call_id,
                     "no answer" if exhausted.no_answer else f"every leg failed "
                     f"({exhausted.status})", step.application)
            out.append(StartApplication(step.application))
            return out
        status = step.status if isinstance(step, GiveUp) else exhausted.status
        reason = step.reason if isinstance(step, GiveUp) else None
        out = self._cancel_others(None)
        self._go(CallInput.RING_TIMEOUT if exhausted.no_answer else CallInput.ALL_FAILED)
        self.ended_at = now
        if not self.caller_gone:
            out.append(RespondCaller(make_response(self.a_invite, status, reason,
                                                   to_tag=self.a_to_tag)))
        if exhausted.no_answer:
            out.append(Ended(Disposition.NO_ANSWER, status, "no answer", Side.CALLEE))
        else:
            out.append(Ended(disposition_for(status), status, f"callee answered {status}",
                             Side.CALLEE))
        return out

    def on_leg_timeout(self, leg_id: LegId, now: float) -> list[Effect]:
        """Timer B fired on a leg: the phone is unreachable (RFC 3261 17.1.1.2 -> 408)."""
        leg = self.leg(leg_id)
        return self._on_failure(leg, 408, now) if leg is not None else []

    def on_cancel(self, now: float) -> list[Effect]:
        if not self.ringing_phase:
            return []
        out = self._cancel_others(None)
        self._go(CallInput.CANCEL)
        self.ended_at = now
        out.append(RespondCaller(make_response(self.a_invite, 487, to_tag=self.a_to_tag)))
        out.append(Ended(Disposition.CANCELLED, 487, "caller cancelled", Side.CALLER))
        return out

    def on_ack(self, now: float) -> list[Effect]:
        self._retransmit_at = None
        self._ack_deadline = None
        return []

    def on_bye(self, side: Side, now: float) -> list[Effect]:
        """A BYE from the caller (side CALLER) or the answered callee (side CALLEE)."""
        if self.state is not CallState.ANSWERED:
            return []
        self._go(CallInput.BYE)
        self.ended_at = now
        self._clear_deadlines()
        out: list[Effect] = []
        if side is Side.CALLER:
            leg = self.answered
            if leg is not None and leg.dialog is not None:
                out.append(SendRequest(self._bye(leg.dialog, leg.dest), leg.dest, Side.CALLEE))
            cause = "caller hung up"
        else:
            if self.a_dialog is not None:
                out.append(SendRequest(self._bye(self.a_dialog, self.a_peer), self.a_peer,
                                       Side.CALLER))
            cause = "callee hung up"
        out.append(Ended(Disposition.ANSWERED, 200, cause, side))
        return out

    def hang_up(self, now: float, cause: str = "switch ended the call") -> list[Effect]:
        """The switch ends the call itself (shutdown, failed ACK...)."""
        if self.ringing_phase:
            out = self._cancel_others(None)
            self._go(CallInput.RING_TIMEOUT)
            self.ended_at = now
            out.append(RespondCaller(make_response(self.a_invite, 503, to_tag=self.a_to_tag)))
            out.append(Ended(Disposition.FAILED, 503, cause, Side.SWITCH))
            return out
        if self.state is CallState.ANSWERED:
            out = []
            leg = self.answered
            if leg is not None and leg.dialog is not None:
                out.append(SendRequest(self._bye(leg.dialog, leg.dest), leg.dest, Side.CALLEE))
            if self.a_dialog is not None:
                out.append(SendRequest(self._bye(self.a_dialog, self.a_peer), self.a_peer,
                                       Side.CALLER))
            self._go(CallInput.ACK_TIMEOUT)
            self.ended_at = now
            self._clear_deadlines()
            out.append(Ended(Disposition.ANSWERED, 200, cause, Side.SWITCH))
            return out
        return []

    def _clear_deadlines(self) -> None:
        """An ended call has no timer left: a deadline kept in the past would fire again at
        once, forever (the un-ACKed 2xx loop of issue 20)."""
        self._ring_deadline = None
        self._retransmit_at = None
        self._ack_deadline = None
        self._session_deadline = None
        self._hunt_deadline = None

    def _arm_session(self, now: float) -> None:
        """RFC 4028 section 10: without a refresh, the session ends shortly before it
        expires — min(32 s, interval / 3) early — so a phone that vanished does not leave a
        call (and its relay ports and open call record) behind."""
        if self.session_interval is not None:
            margin = min(32.0, self.session_interval / 3)
            self._session_deadline = now + self.session_interval - margin

    def refresh_session(self, now: float, interval: int | None = None) -> None:
        """The caller refreshed the session (re-INVITE or UPDATE answered 2xx)."""
        if interval is not None:
            self.session_interval = interval
        if self.state is CallState.ANSWERED:
            self._arm_session(now)

    def _bye(self, dialog: Dialog, dest: Peer) -> Request:
        bye = dialog.create_request("BYE", self.local.via_for(dest.transport))
        dialog.terminate()
        return bye

    # -- timers --

    def next_deadline(self) -> float | None:
        if self.state is CallState.ENDED:
            return None
        session = self._session_deadline if self.state is CallState.ANSWERED else None
        hunt = self._hunt_deadline if self.ringing_phase and self.hunt_steps else None
        times = [t for t in (self._ring_deadline if self.ringing_phase else None,
                             self._retransmit_at, self._ack_deadline, session, hunt)
                 if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        if self.state is CallState.ENDED:
            return out
        if (self.ringing_phase and self.hunt_steps and self._hunt_deadline is not None
                and now >= self._hunt_deadline
                and (self._ring_deadline is None or now < self._ring_deadline)):
            return self._next_group(now)
        if self.ringing_phase and self._ring_deadline is not None and now >= self._ring_deadline:
            return self._exhausted(Exhausted(480, no_answer=True), now)
        if self._ack_deadline is not None and now >= self._ack_deadline:
            log.info("call %s: no ACK for the 2xx; ending it", self.a_invite.call_id)
            return self.hang_up(now, "no ACK from the caller")
        if (self.state is CallState.ANSWERED and self._session_deadline is not None
                and now >= self._session_deadline):
            log.info("call %s: session timer expired without a refresh", self.a_invite.call_id)
            return self.hang_up(now, "session timer expired (RFC 4028)")
        if self._retransmit_at is not None and now >= self._retransmit_at:
            if not self._final_to_a and self._a_ok is not None:
                self._final_to_a = self._a_ok.to_bytes()
            out.append(SendStateless(self._final_to_a, self.a_peer))
            self._retransmit_interval = min(self._retransmit_interval * 2, self.t2)
            self._retransmit_at = now + self._retransmit_interval
        return out

    # -- an application hands its caller over (ivr Transfer) --

    def adopt_callee(self, leg: Leg) -> LegId:
        """A party that answered a leg rung for the application answering this call (a
        menu key, dial by extension) becomes the call's callee: its BYE and re-INVITEs now
        reach this call, and hanging up releases it. The leg comes from the separate Call
        that rang it (so forking, hunting and ring timeouts are the ordinary ones)."""
        if self.state is not CallState.ANSWERED or self.answered_leg is not None:
            raise CallTransitionError(f"{self.state.name} call cannot adopt a callee")
        adopted = Leg(LegId(len(self.legs)), leg.invite, leg.dest, LegState.ANSWERED,
                      leg.final_status, leg.dialog, leg.ack)
        self.legs.append(adopted)
        self.answered_leg = adopted.id
        log.info("call %s: the application handed the caller to %s", self.a_invite.call_id,
                 leg.invite.uri)
        return adopted.id

    # -- transfer (RFC 3515, RFC 5589) --

    def dialog_of(self, side: Side) -> tuple[Dialog, Peer] | None:
        """The dialog (and where it is reached) of the caller, or of the answered callee."""
        if self.state is not CallState.ANSWERED:
            return None
        if side is Side.CALLER:
            return (self.a_dialog, self.a_peer) if self.a_dialog is not None else None
        leg = self.answered
        return (leg.dialog, leg.dest) if leg is not None and leg.dialog is not None else None

    def transfer_completed(self, replaced: Side, dialog: Dialog, dest: Peer, target: str,
                           sdp: bytes, now: float) -> list[Effect]:
        """The transfer target answered: it takes the place of the party on `replaced` (the
        transferor), who gets a BYE. Later BYEs and re-INVITEs of the target reach this call
        as that side's. A caller that already left (`caller_gone`) has nothing to BYE."""
        if self.state is not CallState.ANSWERED:
            return []
        current = self.dialog_of(replaced)
        if current is None and not (replaced is Side.CALLER and self.caller_gone):
            return []
        out: list[Effect] = []
        old_call_id = self.a_invite.call_id
        if current is not None:
            old_dialog, old_dest = current
            old_call_id = old_dialog.call_id
            out.append(SendRequest(self._bye(old_dialog, old_dest), old_dest, replaced))
        if replaced is Side.CALLER:
            self.a_dialog, self.a_peer = dialog, dest
            # the RFC 4028 timer was agreed with the party that left; the new one never
            # agreed one on its dialog, so its silence must not end the call
            self.session_interval = self._session_deadline = None
        else:
            leg = self.answered
            assert leg is not None
            leg.dialog, leg.dest = dialog, dest
        log.info("call %s: transferred, %s replaced by %s", self.a_invite.call_id,
                 replaced.value, target)
        out.append(Transferred(replaced, target, old_call_id, dialog.call_id, sdp))
        return out

    def give_away(self, leaving: Side, now: float, cause: str) -> list[Effect]:
        """The party on `leaving` joined another call (attended transfer, RFC 3891): its
        dialog now belongs to that call, so only the other party (the transferor) gets a
        BYE, and this call ends."""
        if self.state is not CallState.ANSWERED:
            return []
        staying = Side.CALLEE if leaving is Side.CALLER else Side.CALLER
        current = self.dialog_of(staying)
        self._go(CallInput.BYE)
        self.ended_at = now
        self._clear_deadlines()
        out: list[Effect] = []
        if current is not None:
            out.append(SendRequest(self._bye(*current), current[1], staying))
        out.append(Ended(Disposition.ANSWERED, 200, cause, staying))
        return out

    def release_caller(self) -> list[Effect]:
        """The caller cancels a ringing call that another call waits for (semi-attended
        transfer: the transferor hangs up while the target rings): the caller gets its 487
        (RFC 3261 9.2), the legs ring on and an answer is for that other call."""
        if not self.ringing_phase or self.caller_gone:
            return []
        self.caller_gone = True
        self._retransmit_at = self._ack_deadline = None
        log.info("call %s: the caller left, the legs ring on for a transfer",
                 self.a_invite.call_id)
        return [RespondCaller(make_response(self.a_invite, 487, to_tag=self.a_to_tag))]

    def caller_identity(self) -> NameAddr:
        return self.a_invite.from_
