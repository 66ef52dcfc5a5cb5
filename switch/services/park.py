"""Call park (issue 16): each customer's orbits, and the connection of a retrieved call.

`ivr/park.py` holds the two applications (the parked party's and the retriever's) and the
pure orbit table; this adapter keeps one `ParkingLot` per customer and, when a parked call
is retrieved, bridges the two application endpoints through a two-party room of the
conference service (each hears the other: the room's mix-minus of two parties).
The parked calls live in this process's memory, like the rooms (a parked caller's media
is on the node that answered it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from ivr.application import AppEvent, CallApplication, CallInfo
from ivr.park import ParkedApp, ParkingLot, PartnerLeft, RetrieveApp, Retrieved
from switch.b2bua.decisions import AppContext, ApplicationFactory, InContext
from switch.services.conferences import ConferenceService, MemberLookup

log = logging.getLogger("switch.park")

PARK_APPLICATION = "call_park"  # the FeatureName values of the codes
RETRIEVE_APPLICATION = "call_park_retrieve"


class ParkService:
    def __init__(self, rooms: ConferenceService, *, timeout: float = 60.0) -> None:
        self.rooms = rooms
        self.timeout = timeout
        self.lots: dict[str, ParkingLot] = {}
        self.customer_of: dict[str, str] = {}  # call id -> customer
        self.partner: dict[str, str] = {}  # a retrieved call's two call ids, both ways
        self.room_of: dict[str, str] = {}

    @property
    def member_for(self) -> MemberLookup:
        return self.rooms.member_for

    def applications(self) -> dict[str, ApplicationFactory]:
        return {PARK_APPLICATION: InContext(self._parked_app),
                RETRIEVE_APPLICATION: InContext(self._retrieve_app)}

    def _customer(self, ctx: AppContext) -> str:
        return ctx.caller.customer.id if ctx.caller is not None else "?"

    def _parked_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        # the parker: the user whose blind transfer brought the caller here (the switch's
        # own INVITE carries its identity), or the caller itself dialing the code
        parker = ctx.caller.full_number if ctx.caller is not None else info.caller
        customer = self._customer(ctx)
        return ParkedApp(info, _Desk(self, customer), parker, self.timeout, customer)

    def _retrieve_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        return RetrieveApp(info, _Desk(self, self._customer(ctx)), ctx.decision.argument or "")

    # -- the desk's work --

    def park(self, customer: str, call_id: str, parker: str) -> int | None:
        lot = self.lots.setdefault(customer, ParkingLot())
        orbit = lot.park(call_id, parker)
        if orbit is not None:
            self.customer_of[call_id] = customer
        return orbit

    def unpark(self, customer: str, call_id: str) -> None:
        lot = self.lots.get(customer)
        if lot is not None:
            lot.release(call_id)

    def retrieve(self, customer: str, orbit: str, call_id: str, by: str) -> bool:
        lot = self.lots.get(customer)
        if lot is None or not orbit.isdigit():
            return False
        taken = lot.take(int(orbit))
        if taken is None:
            return False
        parked, parker = taken
        runner = self.member_for(parked)
        if runner is None or runner.closed:
            return False
        runner.deliver(cast(AppEvent, Retrieved(by)))  # the parked app stops its timer
        room = f"{customer}:park:{parked}"
        self.rooms.join(room, parked, parker, False)
        self.rooms.join(room, call_id, by, False)
        self.partner[parked], self.partner[call_id] = call_id, parked
        self.room_of[parked] = self.room_of[call_id] = room
        log.info("park orbit=%s call=%s retrieved by=%s call=%s", orbit, parked, by, call_id)
        return True

    def hung_up(self, customer: str, call_id: str) -> None:
        self.unpark(customer, call_id)
        self.customer_of.pop(call_id, None)
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
        runner = self.member_for(other)
        if runner is not None and not runner.closed:
            # in its own loop callback: never inside this application's step
            asyncio.get_running_loop().call_soon(runner.deliver,
                                                 cast(AppEvent, PartnerLeft()))


class _Desk:
    """`ParkDesk` of one customer."""

    def __init__(self, service: ParkService, customer: str) -> None:
        self.service = service
        self.customer = customer

    def park(self, call_id: str, parker: str, now: float) -> int | None:
        return self.service.park(self.customer, call_id, parker)

    def unpark(self, call_id: str) -> None:
        self.service.unpark(self.customer, call_id)

    def retrieve(self, orbit: str, call_id: str, by: str, now: float) -> bool:
        return self.service.retrieve(self.customer, orbit, call_id, by)

    def hung_up(self, call_id: str) -> None:
        self.service.hung_up(self.customer, call_id)


__all__ = ["PARK_APPLICATION", "RETRIEVE_APPLICATION", "ParkService"]
