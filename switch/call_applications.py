"""Calls the switch answers itself: a call application (voicemail, attendant, feature code,
conference...) takes the caller's media, either at once (the decision named it) or when
every leg failed and the exhausted policy chose one (`AnswerWith`). Split from
`switch.calls`, whose `CallService` owns the calls these functions start."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from dialplan import RoutingDecision, User
from ivr.application import CallInfo
from switch.b2bua.call import CallState
from switch.b2bua.decisions import (
    AppContext,
    ApplicationFactory,
    InContext,
    Refuse,
    RunApplication,
)
from switch.call_entry import CallEntry
from switch.divert import ApplicationControl
from switch.runtime import ServerRequest
from switch.services.applications import ApplicationMedia, ApplicationRunner
from switch.sip import SipError

if TYPE_CHECKING:
    from switch.calls import CallService

log = logging.getLogger("switch.calls")


async def start_application(calls: CallService, sreq: ServerRequest, caller: User | None,
                            decision: RoutingDecision, handling: RunApplication) -> None:
    """The switch answers the caller itself and hands the call to an application."""
    if calls.media is None:
        calls.refuse(sreq, caller, decision, Refuse(503, "Media Unavailable"))
        return
    try:
        endpoint, answer = await calls.media.application_endpoint(sreq.request.body)
    except SipError as exc:  # no offer we can answer (488), no port left (503)
        calls.refuse(sreq, caller, decision, Refuse(exc.status, exc.reason,
                                                    headers=tuple(exc.headers)))
        return
    entry = calls.new_entry(sreq, caller, decision, None)
    if entry is None:
        calls.admission.release(sreq.request.call_id)
        await endpoint.close()
        return
    run_application(calls, entry, handling.name, handling.factory, endpoint, answer)


def run_application(calls: CallService, entry: CallEntry, name: str,
                    factory: ApplicationFactory, endpoint: ApplicationMedia,
                    answer: bytes) -> None:
    req = entry.call.a_invite
    info = CallInfo(req.call_id, entry.record.caller, str(req.uri), secrets.token_hex(6))
    if isinstance(factory, InContext):  # voicemail (issue 13): whose mailbox, who calls
        app = factory.make(info, AppContext(entry.decision, entry.caller,
                                            entry.call.a_peer.host))
    else:
        app = factory(info)
    entry.app = ApplicationRunner(app, endpoint, ApplicationControl(calls, entry), info,
                                  recordings=calls.recordings, prompts=calls.prompts)
    log.info("call %s: application %s", req.call_id, name)
    entry.app.start()
    calls.perform(entry, entry.call.answer_locally(answer, calls.now()))
    if entry.call.state is CallState.ANSWERED:
        entry.app.answered()


async def answer_with(calls: CallService, entry: CallEntry, name: str) -> None:
    """Every leg failed and the exhausted policy chose an application (`AnswerWith`)."""
    call = entry.call
    factory = calls.applications.get(name)
    if factory is None or calls.media is None:
        calls.perform(entry, call.hang_up(calls.now(), f"application {name} unavailable"))
        return
    try:
        endpoint, answer = await calls.media.application_endpoint(call.a_invite.body)
    except SipError as exc:
        calls.perform(entry, call.hang_up(calls.now(), f"{name}: {exc.status} {exc.reason}"))
        return
    if not call.ringing_phase:  # the caller cancelled meanwhile
        await endpoint.close()
        return
    run_application(calls, entry, name, factory, endpoint, answer)
