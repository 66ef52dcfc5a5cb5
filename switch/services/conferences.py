"""Conference rooms (issue 16): who is in each room, and its audio every 20 ms.

The conference application (`ivr/conference.py`) joins a caller through `_Desk`; the room
then takes the caller's media endpoint over: each tick's received frame goes to the room's
`media.conference.RoomMixer` (the endpoint's sink) and the endpoint plays the room's mix for
that participant (`RoomFeed`). One callback on the media engine's 20 ms clock mixes every
room; mixing ten G.711 participants is a few tens of microseconds (`bench/bench_conference.py`).

The rooms live in this process's memory: a room is where its participants' media is, so a
second switch process has its own rooms (a caller always stays on the node that answered).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

from dialplan import User
from dialplan.packs import Pack
from ivr.application import AppEvent, CallApplication, CallInfo
from ivr.conference import (
    MAX_PARTICIPANTS,
    ConferenceApp,
    ConferenceConfig,
    JoinOutcome,
    Removed,
)
from media.clock import MediaClock
from media.codecs import Pcm
from media.conference import ACTION_CUE, JOIN_CUE, LEAVE_CUE, RoomFeed, RoomMixer
from media.player import Source
from switch.b2bua.decisions import AppContext, ApplicationFactory, InContext
from switch.services.ports import PlanSource

if TYPE_CHECKING:
    from switch.calls import CallService

log = logging.getLogger("switch.conferences")

ROOM_APPLICATION = "conference_room"  # the FeatureName values of the codes
PERSONAL_APPLICATION = "personal_conference"
UNKNOWN_PIN = None  # an unknown room still asks a PIN (below): no room enumeration


class RoomMedia(Protocol):
    """What a room uses of a participant's `media.MediaEndpoint`."""

    def play_source(self, source: Source) -> None: ...

    def set_sink(self, sink: Callable[[Pcm | None], None] | None) -> None: ...


class Member(Protocol):
    """What the service uses of a participant's `ApplicationRunner`."""

    closed: bool
    media: object

    def deliver(self, event: AppEvent) -> None: ...


class PinGuard(Protocol):
    """The switch's failure guard (`devices.guard.AuthFailureGuard`)."""

    def check(self, source_ip: str, now: float, account: str | None = None) -> object: ...

    def record_failure(self, source_ip: str, now: float,
                       account: str | None = None) -> object: ...


MemberLookup = Callable[[str], Member | None]


def _no_member(call_id: str) -> Member | None:
    return None


@dataclass
class _Participant:
    call_id: str
    caller: str
    owner: bool
    media: RoomMedia | None
    feed: RoomFeed = field(default_factory=RoomFeed)


@dataclass
class _Room:
    key: str
    mixer: RoomMixer[str] = field(default_factory=RoomMixer)
    members: dict[str, _Participant] = field(default_factory=dict)  # in joining order
    others_muted: bool = False


class ConferenceService:
    """Every room of this process, mixed on the media clock."""

    def __init__(self, plan: PlanSource, *, member_for: MemberLookup = _no_member,
                 clock: Callable[[], MediaClock | None] = lambda: None,
                 guard: Callable[[], PinGuard | None] = lambda: None,
                 now: Callable[[], float] | None = None) -> None:
        self.plan = plan
        self.member_for = member_for
        self.media_clock = clock
        self.guard = guard
        self._now = now
        self.rooms: dict[str, _Room] = {}
        self._tick_id: int | None = None
        self._clock: MediaClock | None = None

    def now(self) -> float:
        return self._now() if self._now is not None else asyncio.get_running_loop().time()

    # -- the applications (decision table rows: FEATURE conference_room / personal) --

    def applications(self) -> dict[str, ApplicationFactory]:
        return {ROOM_APPLICATION: InContext(self._room_app),
                PERSONAL_APPLICATION: InContext(self._personal_app)}

    def _room_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        caller = ctx.caller
        customer = caller.customer if caller is not None else None
        number = ctx.decision.argument or ""
        room = customer.conference_rooms.get(number) if customer is not None else None
        cid = customer.id if customer is not None else "?"
        if room is None:  # asks a PIN nobody has: an unknown room sounds like a locked one
            config = ConferenceConfig(f"{cid}:room:?", "", False, cid)
        else:
            owner = caller is not None and caller.full_number == room.owner
            config = ConferenceConfig(f"{cid}:room:{number}", room.pin, owner, cid)
        return ConferenceApp(info, _Desk(self, config.room, ctx.source), config)

    def _personal_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        """`*72`: the caller's own personal conference number; `*72` + an extension of the
        caller's site or a full number: that Suite-pack user's."""
        caller = ctx.caller
        target: User | None = caller
        ref = ctx.decision.argument
        if caller is not None and ref:
            found = (caller.customer.by_full_number.get(ref)
                     or caller.site.by_extension.get(ref))
            target = found if isinstance(found, User) else None
        cid = caller.customer.id if caller is not None else "?"
        if target is None or caller is None or target.pack is not Pack.SUITE:
            config = ConferenceConfig(f"{cid}:pcn:?", "", False, cid)
        else:
            config = ConferenceConfig(f"{cid}:pcn:{target.full_number}", target.conference_pin,
                                      target is caller, cid)
        return ConferenceApp(info, _Desk(self, config.room, ctx.source), config)

    # -- rooms --

    def join(self, key: str, call_id: str, caller: str, owner: bool) -> JoinOutcome:
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = _Room(key)
        if len(room.members) >= MAX_PARTICIPANTS:
            log.info("conference room=%s full: call=%s refused", key, call_id)
            return JoinOutcome.FULL
        runner = self.member_for(call_id)
        media = cast(RoomMedia, runner.media) if runner is not None and hasattr(
            runner.media, "play_source") else None
        p = _Participant(call_id, caller, owner, media)
        room.members[call_id] = p
        room.mixer.add(call_id)
        if room.others_muted and not owner:
            room.mixer.mute(call_id, True)
        room.mixer.play_to_all(JOIN_CUE)
        if media is not None:
            mixer = room.mixer

            def sink(pcm: Pcm | None) -> None:
                mixer.feed(call_id, pcm)

            media.set_sink(sink)
            media.play_source(p.feed)
        self._start_clock()
        log.info("conference room=%s join call=%s caller=%s owner=%s participants=%d", key,
                 call_id, caller, owner, len(room.members))
        return JoinOutcome.JOINED

    def leave(self, key: str, call_id: str) -> None:
        room = self.rooms.get(key)
        if room is None or call_id not in room.members:
            return
        p = room.members.pop(call_id)
        room.mixer.remove(call_id)
        if p.media is not None:
            p.media.set_sink(None)
        log.info("conference room=%s leave call=%s participants=%d", key, call_id,
                 len(room.members))
        if room.members:
            room.mixer.play_to_all(LEAVE_CUE)
        else:
            del self.rooms[key]
            self._stop_clock_if_idle()

    def toggle_self_mute(self, key: str, call_id: str) -> bool:
        room = self.rooms.get(key)
        if room is None or call_id not in room.members:
            return False
        muted = not room.mixer.muted(call_id)
        room.mixer.mute(call_id, muted)
        room.mixer.play_to(call_id, ACTION_CUE)
        return muted

    def toggle_mute_others(self, key: str, call_id: str) -> bool:
        room = self.rooms.get(key)
        if room is None or call_id not in room.members:
            return False
        room.others_muted = not room.others_muted
        for other in room.members.values():
            if other.call_id != call_id and not other.owner:
                room.mixer.mute(other.call_id, room.others_muted)
        room.mixer.play_to(call_id, ACTION_CUE)
        return room.others_muted

    def remove_last(self, key: str, call_id: str) -> str | None:
        """The owner removes the participant who joined last (never an owner)."""
        room = self.rooms.get(key)
        if room is None:
            return None
        victims = [p for p in room.members.values() if p.call_id != call_id and not p.owner]
        if not victims:
            return None
        victim = victims[-1]
        room.mixer.play_to(call_id, ACTION_CUE)
        runner = self.member_for(victim.call_id)
        if runner is not None and not runner.closed:
            # in its own loop callback: never inside the owner's application step
            asyncio.get_running_loop().call_soon(
                runner.deliver, cast(AppEvent, Removed()))
        else:
            self.leave(key, victim.call_id)
        return victim.caller

    # -- the 20 ms mix --

    def _start_clock(self) -> None:
        if self._tick_id is not None:
            return
        clock = self.media_clock()
        if clock is None:
            return
        self._clock = clock
        self._tick_id = clock.add(self.tick)

    def _stop_clock_if_idle(self) -> None:
        if not self.rooms and self._tick_id is not None and self._clock is not None:
            self._clock.remove(self._tick_id)
            self._tick_id = None

    def tick(self, now: float) -> None:
        for room in list(self.rooms.values()):
            try:
                out = room.mixer.tick()
                for call_id, pcm in out.items():
                    p = room.members.get(call_id)
                    if p is not None:
                        p.feed.push(pcm)
            except Exception:  # one room's fault never silences the others
                log.exception("conference room=%s: mixing failed", room.key)

    def figures(self) -> list[dict[str, object]]:
        return [{"room": key, "participants": len(room.members)}
                for key, room in sorted(self.rooms.items())]


def guard_key(room: str) -> str:
    """The failure guard's account key for a room's PIN."""
    return f"conference:{room}"


class _Desk:
    """`RoomDesk` of one room for one caller's application."""

    def __init__(self, service: ConferenceService, room: str, source: str) -> None:
        self.service = service
        self.room = room
        self.source = source

    def join(self, call_id: str, caller: str, owner: bool, now: float) -> JoinOutcome:
        return self.service.join(self.room, call_id, caller, owner)

    def leave(self, call_id: str, now: float) -> None:
        self.service.leave(self.room, call_id)

    def toggle_self_mute(self, call_id: str) -> bool:
        return self.service.toggle_self_mute(self.room, call_id)

    def toggle_mute_others(self, call_id: str) -> bool:
        return self.service.toggle_mute_others(self.room, call_id)

    def remove_last(self, call_id: str) -> str | None:
        return self.service.remove_last(self.room, call_id)

    def pin_blocked(self, now: float) -> bool:
        guard = self.service.guard()
        if guard is None:
            return False
        verdict = guard.check(self.source, time.time(), account=guard_key(self.room))
        return bool(getattr(verdict, "blocked", False))

    def pin_failed(self, now: float) -> None:
        guard = self.service.guard()
        if guard is not None:
            guard.record_failure(self.source, time.time(), account=guard_key(self.room))


def call_service_members(calls: CallService) -> MemberLookup:
    """How rooms reach a participant's application runner, by Call-ID."""

    def member(call_id: str) -> Member | None:
        return cast(Member | None, calls.application_of(call_id))

    return member


__all__ = ["PERSONAL_APPLICATION", "ROOM_APPLICATION", "ConferenceService",
           "call_service_members"]
