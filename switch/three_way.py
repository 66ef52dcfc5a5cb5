"""Three-way calling (issue 16): the user's answered calls join the code call's room.

For each answered, anchored call of the user (the held one and the active one), the
switch does what a blind transfer of the other party would do (`switch.transfer`), with
the switch itself as the target (`switch.internal_calls`, answered by a bridge
application that joins the room): the relay leg that faced the user now faces the
bridge, the user's leg of that call gets a BYE, and the other party stays in its call,
now in the room with the user's code call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, cast

from dialplan import User
from ivr.application import AppEvent, CallApplication, CallInfo
from ivr.conference import MAX_PARTICIPANTS
from ivr.park import PartnerLeft
from ivr.pickup import BridgeApp
from ivr.three_way import ThreeWayApp
from switch.b2bua.call import CallState
from switch.b2bua.decisions import AppContext, ApplicationFactory, InContext, RunApplication
from switch.b2bua.effects import Side
from switch.b2bua.legs import invite_for_callee
from switch.dialog.dialog import Dialog
from switch.services.conferences import ConferenceService
from switch.sip import Response, new_call_id, new_tag
from switch.transfer import BlindTransfer, offer_from_leg

if TYPE_CHECKING:
    from switch.calls import CallEntry, CallService

log = logging.getLogger("switch.three_way")

THREE_WAY_APPLICATION = "three_way"  # the FeatureName value of the code
BRIDGE_APPLICATION = "three_way_bridge"


class ThreeWayService:
    def __init__(self, rooms: ConferenceService) -> None:
        self.rooms = rooms
        self.calls: CallService | None = None  # set once the call service exists
        self.bridges: dict[str, set[str]] = {}  # the user's code call -> bridge calls
        self.room_of: dict[str, str] = {}

    def applications(self) -> dict[str, ApplicationFactory]:
        return {THREE_WAY_APPLICATION: InContext(self._app)}

    def _app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        return ThreeWayApp(info, _Desk(self, ctx.caller))

    def calls_of(self, user: User, exclude: str) -> list[tuple[CallEntry, Side]]:
        """The user's answered, anchored calls and the user's side in each."""
        calls = self.calls
        if calls is None:
            return []
        found: list[tuple[CallEntry, Side]] = []
        seen: set[int] = set()
        for ref in list(calls.by_call_id.values()):
            entry, call = ref.entry, ref.entry.call
            if id(entry) in seen or call.a_invite.call_id == exclude:
                continue
            seen.add(id(entry))
            if call.state is not CallState.ANSWERED or entry.anchor is None:
                continue
            # by number and customer id: a call may hold a reloaded plan's older objects
            caller = entry.caller
            if (caller is not None and caller.full_number == user.full_number
                    and caller.customer.id == user.customer.id):
                found.append((entry, Side.CALLER))
            elif (call.answered_leg is not None
                  and entry.leg_users.get(call.answered_leg) == user.full_number
                  and getattr(getattr(entry.decision.target, "customer", None), "id", None)
                  == user.customer.id):
                found.append((entry, Side.CALLEE))
        return found[:MAX_PARTICIPANTS - 1]

    def merge(self, user: User | None, call_id: str) -> int:
        if user is None or self.calls is None:
            return 0
        found = self.calls_of(user, call_id)
        if not found:
            return 0
        room = f"{user.customer.id}:3way:{call_id}"
        self.rooms.join(room, call_id, user.full_number, True)
        self.room_of[call_id] = room
        self.bridges[call_id] = set()
        for entry, side in found:
            self._pull(entry, side, user, call_id, room)
        return len(found)

    def _pull(self, entry: CallEntry, side: Side, user: User, host_call: str,
              room: str) -> None:
        """Move the other party of `entry` to a bridge in `room` (a blind transfer of the
        user's side to the switch itself)."""
        calls, call, anchor = self.calls, entry.call, entry.anchor
        assert calls is not None and anchor is not None
        desk = _BridgeDesk(self, host_call, room)
        handling = RunApplication(BRIDGE_APPLICATION, lambda info: BridgeApp(info, desk))
        target = calls.internal.target(user, "*3", call.a_invite.from_, handling=handling)
        invite = invite_for_callee(
            request_uri=target.request_uri, to=target.to, caller=target.from_.with_tag(new_tag()),
            call_id=new_call_id(), local=calls.local, dest=target.dest,
            body=offer_from_leg(anchor, side, secrets.randbelow(2**31)), max_forwards=70,
            identity_headers=target.identity_headers)
        local, dest = calls.local, target.dest

        def done(xfer: BlindTransfer, resp: Response) -> None:
            dialog = Dialog.uac(xfer.invite, resp)
            calls.runtime.send_raw(dialog.create_request(
                "ACK", local.via_for(dest.transport), cseq=1).to_bytes(), dest)
            calls.perform(entry, call.transfer_completed(side, dialog, dest, "conference",
                                                         resp.body, calls.runtime.now()))
            log.info("three-way call=%s joins the conference of %s", call.a_invite.call_id,
                     user.full_number)

        def failed(xfer: BlindTransfer, status: int, reason: str) -> None:
            log.info("three-way call=%s could not join (%d %s)", call.a_invite.call_id,
                     status, reason)

        xfer = BlindTransfer(side, invite, dest, done, failed)
        calls.runtime.send_request(invite, dest, xfer.on_response)

    def bridged(self, host_call: str, bridge_call: str, room: str) -> None:
        if host_call not in self.bridges:  # the user left meanwhile
            runner = self.rooms.member_for(bridge_call)
            if runner is not None and not runner.closed:
                asyncio.get_running_loop().call_soon(runner.deliver,
                                                     cast(AppEvent, PartnerLeft()))
            return
        self.bridges[host_call].add(bridge_call)
        self.rooms.join(room, bridge_call, "bridge", False)

    def bridge_left(self, host_call: str, bridge_call: str, room: str) -> None:
        self.rooms.leave(room, bridge_call)
        self.bridges.get(host_call, set()).discard(bridge_call)

    def host_left(self, host_call: str) -> None:
        """The user hung up: the conference ends for everyone."""
        room = self.room_of.pop(host_call, None)
        if room is not None:
            self.rooms.leave(room, host_call)
        for bridge in self.bridges.pop(host_call, set()):
            runner = self.rooms.member_for(bridge)
            if runner is not None and not runner.closed:
                asyncio.get_running_loop().call_soon(runner.deliver,
                                                     cast(AppEvent, PartnerLeft()))


class _Desk:
    def __init__(self, service: ThreeWayService, user: User | None) -> None:
        self.service = service
        self.user = user

    def merge(self, call_id: str, now: float) -> int:
        return self.service.merge(self.user, call_id)

    def hung_up(self, call_id: str) -> None:
        self.service.host_left(call_id)


class _BridgeDesk:
    def __init__(self, service: ThreeWayService, host_call: str, room: str) -> None:
        self.service = service
        self.host_call = host_call
        self.room = room

    def pick(self, call_id: str, now: float) -> str | None:
        return None

    def bridged(self, call_id: str, now: float) -> None:
        self.service.bridged(self.host_call, call_id, self.room)

    def hung_up(self, call_id: str) -> None:
        self.service.bridge_left(self.host_call, call_id, self.room)


__all__ = ["THREE_WAY_APPLICATION", "ThreeWayService"]
