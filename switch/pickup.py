"""Call pickup (issue 16): find a call ringing someone of the picker's group (or the user
it names) and answer it for the picker.

The picked call is a call of the call service still ringing its legs. The switch adds one
more leg to it, toward itself (`switch.internal_calls`: an INVITE the switch answers with
`ivr.pickup.BridgeApp` instead of routing it): the call is answered by that leg like by
any phone (its other legs are cancelled, the caller gets the 200 OK, the relay latches
onto the bridge's endpoint), and the bridge's endpoint is joined with the picker's in a
two-party room of the conference service. A user's pickup group is the plan's
`pickup_group:`, else the user's site; only calls of the picker's own customer qualify.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from dialplan import User
from ivr.application import AppEvent, CallApplication, CallInfo
from ivr.park import PartnerLeft
from ivr.pickup import BridgeApp, PickedUp, PickupApp
from switch.b2bua.assembly import assemble
from switch.b2bua.call import LegState
from switch.b2bua.decisions import AppContext, ApplicationFactory, InContext, RunApplication
from switch.b2bua.effects import Side
from switch.services.conferences import ConferenceService

if TYPE_CHECKING:
    from switch.calls import CallEntry, CallService

log = logging.getLogger("switch.pickup")

GROUP_APPLICATION = "group_pickup"  # the FeatureName values of the codes
DIRECTED_APPLICATION = "directed_pickup"
BRIDGE_APPLICATION = "pickup_bridge"


def pickup_group(user: User) -> str:
    return user.pickup_group or f"site:{user.site.code}"


class PickupService:
    def __init__(self, rooms: ConferenceService) -> None:
        self.rooms = rooms
        self.calls: CallService | None = None  # set once the call service exists
        self.partner: dict[str, str] = {}  # picker <-> bridge call ids
        self.room_of: dict[str, str] = {}

    def applications(self) -> dict[str, ApplicationFactory]:
        return {GROUP_APPLICATION: InContext(self._picker_app),
                DIRECTED_APPLICATION: InContext(self._picker_app)}

    def _picker_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        return PickupApp(info, _PickerDesk(self, ctx))

    # -- finding the call --

    def ringing_for(self, picker: User, target: User | None) -> tuple[CallEntry, str] | None:
        """The oldest call ringing `target` (directed) or someone of the picker's group,
        with the user it rings."""
        calls = self.calls
        if calls is None:
            return None
        seen: set[int] = set()
        for ref in list(calls.by_call_id.values()):
            entry = ref.entry
            if ref.side is not Side.CALLER or id(entry) in seen or not entry.call.ringing_phase:
                continue
            seen.add(id(entry))
            # by id: a call that began before a plan reload holds the old plan's objects
            customer = getattr(entry.decision.target, "customer", None)
            if getattr(customer, "id", None) != picker.customer.id:
                continue
            for leg in entry.call.legs:
                number = entry.leg_users.get(leg.id)
                if number is None or leg.state not in (LegState.TRYING, LegState.EARLY):
                    continue
                rung = picker.customer.by_full_number.get(number)
                if not isinstance(rung, User) or rung.full_number == picker.full_number:
                    continue
                if (rung.full_number == target.full_number) if target is not None else (
                        pickup_group(rung) == pickup_group(picker)):
                    return entry, number
        return None

    def pick(self, ctx: AppContext, picker_call: str) -> str | None:
        picker, calls = ctx.caller, self.calls
        if picker is None or calls is None:
            return None
        target: User | None = None
        if ctx.decision.feature == DIRECTED_APPLICATION:
            ref = ctx.decision.argument or ""
            found = picker.customer.by_full_number.get(ref) or picker.site.by_extension.get(ref)
            if not isinstance(found, User):
                return None
            target = found
        chosen = self.ringing_for(picker, target)
        if chosen is None:
            return None
        entry, rung = chosen
        desk = _BridgeDesk(self, picker_call)
        handling = RunApplication(BRIDGE_APPLICATION, lambda info: BridgeApp(info, desk))
        leg_target = calls.internal.target(picker, "*8", entry.call.a_invite.from_,
                                           handling=handling)
        call = entry.call
        leg = assemble([[leg_target]], body=entry.b_sdp, local=calls.local,
                       max_forwards=max(0, (call.a_invite.max_forwards or 70) - 1),
                       first_leg=len(call.legs))[0][0]
        calls.bind_dialog(leg.invite.call_id, entry, Side.CALLEE, leg.leg)
        entry.leg_users[leg.leg] = picker.full_number
        calls.perform(entry, call.add_leg(leg.invite, leg.dest))
        log.info("pickup call=%s ringing %s picked by %s", call.a_invite.call_id, rung,
                 picker.full_number)
        return call.a_invite.call_id

    # -- the connection --

    def bridged(self, picker_call: str, bridge_call: str) -> None:
        room = f"pickup:{picker_call}"
        self.rooms.join(room, bridge_call, "bridge", False)
        self.rooms.join(room, picker_call, "picker", False)
        self.partner[picker_call], self.partner[bridge_call] = bridge_call, picker_call
        self.room_of[picker_call] = self.room_of[bridge_call] = room
        runner = self.rooms.member_for(picker_call)
        if runner is not None and not runner.closed:
            runner.deliver(cast(AppEvent, PickedUp(bridge_call)))

    def hung_up(self, call_id: str) -> None:
        room = self.room_of.pop(call_id, None)
        if room is not None:
            self.rooms.leave(room, call_id)
        other = self.partner.pop(call_id, None)
        if other is None:
            return
        self.partner.pop(other, None)
        other_room = self.room_of.pop(other, None)
        if other_room is not None:
            self.rooms.leave(other_room, other)
        runner = self.rooms.member_for(other)
        if runner is not None and not runner.closed:
            asyncio.get_running_loop().call_soon(runner.deliver, cast(AppEvent, PartnerLeft()))


class _PickerDesk:
    def __init__(self, service: PickupService, ctx: AppContext) -> None:
        self.service = service
        self.ctx = ctx

    def pick(self, call_id: str, now: float) -> str | None:
        return self.service.pick(self.ctx, call_id)

    def bridged(self, call_id: str, now: float) -> None:  # the picker never bridges
        return None

    def hung_up(self, call_id: str) -> None:
        self.service.hung_up(call_id)


class _BridgeDesk:
    def __init__(self, service: PickupService, picker_call: str) -> None:
        self.service = service
        self.picker_call = picker_call

    def pick(self, call_id: str, now: float) -> str | None:  # the bridge never picks
        return None

    def bridged(self, call_id: str, now: float) -> None:
        self.service.bridged(self.picker_call, call_id)

    def hung_up(self, call_id: str) -> None:
        self.service.hung_up(call_id)


__all__ = ["DIRECTED_APPLICATION", "GROUP_APPLICATION", "PickupService", "pickup_group"]
