"""Self-service (issue 18, service description 4.2): a user logs in with its SIP
credentials and manages its own line: settings (forwarding, DND, CLIR, call waiting...),
voicemail messages, call history with missed calls. Customer admins reach the same
settings of their users under /customers/{id}/users/{number}/settings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from dialplan import CallContext, DecisionKind, PackFeature, User, route
from dialplan.user_settings import (
    MAX_NO_ANSWER_SECONDS,
    MAX_SIMULTANEOUS,
    MIN_NO_ANSWER_SECONDS,
    SequentialStep,
    UserSettings,
)
from switch.services.voicemail import mailbox_key

from .auth import LoginRefused, Principal, check_password
from .rest import ApiContext, context, not_found, principal

router = APIRouter(tags=["self-service"])

Number = Annotated[str, Field(pattern=r"^[0-9]{2,20}$", description="a number as dialed")]
_MESSAGE_ID = re.compile(r"[0-9a-f]{1,32}")


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, description="the SIP user name")
    password: str = Field(min_length=1, max_length=256)
    domain: str | None = Field(default=None, max_length=253,
                               description="the customer's SIP domain (default: this host's)")


class SessionOut(BaseModel):
    token: str
    expires_at: float
    user: str
    customer: str


class MeOut(BaseModel):
    role: str
    name: str
    customer: str | None
    user: str | None
    display_name: str | None = None
    extension: str | None = None
    public_number: str | None = None
    site: str | None = None
    voicemail: bool = False


class SequentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: Number
    seconds: float = Field(ge=5, le=120)


class SettingsBody(BaseModel):
    """A user's personal call settings; every field optional in a PUT: what is left out
    keeps its value. An empty string turns a forwarding off."""

    model_config = ConfigDict(extra="forbid")
    forward_always: Number | Annotated[str, Field(max_length=0)] | None = None
    forward_busy: Number | Annotated[str, Field(max_length=0)] | None = None
    forward_no_answer: Number | Annotated[str, Field(max_length=0)] | None = None
    forward_no_answer_seconds: float | None = Field(
        default=None, ge=MIN_NO_ANSWER_SECONDS, le=MAX_NO_ANSWER_SECONDS)
    forward_unreachable: Number | Annotated[str, Field(max_length=0)] | None = None
    dnd: bool | None = None
    clir: bool | None = None
    reject_anonymous: bool | None = None
    call_waiting: bool | None = None
    simultaneous: list[Number] | None = Field(default=None, max_length=MAX_SIMULTANEOUS)
    sequential: list[SequentialIn] | None = Field(default=None, max_length=MAX_SIMULTANEOUS)


class SettingsOut(BaseModel):
    forward_always: str | None
    forward_busy: str | None
    forward_no_answer: str | None
    forward_no_answer_seconds: float | None
    forward_unreachable: str | None
    dnd: bool
    clir: bool
    reject_anonymous: bool
    call_waiting: bool
    simultaneous: list[str]
    sequential: list[dict[str, Any]]


class MessageOut(BaseModel):
    id: str
    caller: str
    caller_name: str | None
    received_at: float
    time: str
    duration: float
    urgent: bool
    heard: bool


class MailboxOut(BaseModel):
    mailbox: str
    new: int
    old: int
    messages: list[MessageOut]


class CallLogEntryOut(BaseModel):
    direction: str
    other: str | None
    start: float
    seconds: float
    disposition: str | None


class CallLogOut(BaseModel):
    missed_unread: int
    calls: list[CallLogEntryOut]


def settings_out(s: UserSettings) -> SettingsOut:
    return SettingsOut(
        forward_always=s.forward_always, forward_busy=s.forward_busy,
        forward_no_answer=s.forward_no_answer,
        forward_no_answer_seconds=s.forward_no_answer_seconds,
        forward_unreachable=s.forward_unreachable, dnd=s.dnd, clir=s.clir,
        reject_anonymous=s.reject_anonymous, call_waiting=s.call_waiting,
        simultaneous=list(s.simultaneous),
        sequential=[{"number": q.number, "seconds": q.seconds} for q in s.sequential])


_DESTINATIONS = ("forward_always", "forward_busy", "forward_no_answer", "forward_unreachable")


def _check_destination(ctx: ApiContext, user: User, field_name: str, number: str) -> None:
    """A destination is routed as if the user dialed it: its barring profile applies, as
    for the feature codes (no toll-fraud path through the API)."""
    now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
    decision = route(ctx.switch.plan_holder.plan, CallContext(user, None, number, now))
    if decision.kind not in (DecisionKind.USER, DecisionKind.EXTERNAL,
                             DecisionKind.HUNT_GROUP) or decision.target is user:
        raise HTTPException(422, f"{field_name}: {number} is not a destination this user may "
                            "forward to")


def apply_settings(ctx: ApiContext, user: User, current: UserSettings,
                   body: SettingsBody) -> UserSettings:
    changes: dict[str, Any] = {}
    for name, value in body.model_dump(exclude_unset=True).items():
        if name in _DESTINATIONS or name == "forward_no_answer_seconds":
            if name in _DESTINATIONS and value:
                _check_destination(ctx, user, name, value)
            changes[name] = value or None
        elif name == "simultaneous":
            for number in value or ():
                _check_destination(ctx, user, name, number)
            changes[name] = tuple(value or ())
        elif name == "sequential":
            for step in value or ():
                _check_destination(ctx, user, name, step["number"])
            changes[name] = tuple(SequentialStep(s["number"], float(s["seconds"]))
                                  for s in value or ())
        elif value is not None:
            changes[name] = value
    return dataclasses.replace(current, **changes)


async def update_settings(ctx: ApiContext, request: Request, who: Principal, user: User,
                          body: SettingsBody) -> SettingsOut:
    service = ctx.switch.user_settings
    if service is None:
        raise not_found()
    before = service.settings_for(user)
    after = apply_settings(ctx, user, before, body)
    await service.update(user, after)
    await ctx.audit(who, request, "user.settings", f"{user.customer.id}/{user.full_number}",
                    body.model_dump(exclude_unset=True), customer=user.customer.id)
    return settings_out(after)


@router.post("/session", response_model=SessionOut, summary="log in with SIP credentials")
async def login(body: LoginBody, request: Request,
                ctx: ApiContext = Depends(context)) -> SessionOut:
    sw = ctx.switch
    guard = sw.registration.guard
    if guard is None:
        raise HTTPException(503, "starting")
    host = (body.domain or request.headers.get("host", "")).split(":")[0]
    realm = sw.accounts.realm_for_host(host)
    source = request.client.host if request.client else "?"
    try:
        account = await check_password(guard, sw.accounts.find, source, body.username, realm,
                                       body.password, ctx.clock())
    except LoginRefused as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        raise HTTPException(exc.status, "unauthorized" if exc.status == 401
                            else "too many failed attempts", headers=headers) from None
    user = sw.accounts.user_for_aor(account.aor)
    if user is None:
        raise HTTPException(401, "unauthorized")
    token, expires = ctx.sessions.issue(account, user.customer.id, user.full_number,
                                        ctx.clock())
    return SessionOut(token=token, expires_at=expires, user=user.full_number,
                      customer=user.customer.id)


@router.delete("/session", status_code=204, summary="log out (the session token ends)")
async def logout(request: Request, who: Principal = Depends(principal),
                 ctx: ApiContext = Depends(context)) -> Response:
    token = request.headers.get("authorization", "")[7:].strip()
    ctx.sessions.revoke(token, ctx.clock())
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="who am I")
async def me(who: Principal = Depends(principal),
             ctx: ApiContext = Depends(context)) -> MeOut:
    out = MeOut(role=who.role.value, name=who.name, customer=who.customer, user=who.user)
    if who.user is not None:
        user = ctx.me(who)
        out.display_name, out.extension = user.name, user.extension
        out.public_number, out.site = user.public_number, user.site.code
        out.voicemail = user.has(PackFeature.VOICEMAIL)
    return out


@router.get("/me/settings", response_model=SettingsOut, summary="my call settings")
async def my_settings(who: Principal = Depends(principal),
                      ctx: ApiContext = Depends(context)) -> SettingsOut:
    user = ctx.me(who)
    if ctx.switch.user_settings is None:
        raise not_found()
    return settings_out(ctx.switch.user_settings.settings_for(user))


@router.put("/me/settings", response_model=SettingsOut,
            summary="change my call settings (fields left out keep their value)")
async def put_my_settings(body: SettingsBody, request: Request,
                          who: Principal = Depends(principal),
                          ctx: ApiContext = Depends(context)) -> SettingsOut:
    return await update_settings(ctx, request, who, ctx.me(who), body)


def _mailbox(ctx: ApiContext, who: Principal) -> str:
    user = ctx.me(who)
    if ctx.switch.voicemail is None or not user.has(PackFeature.VOICEMAIL):
        raise not_found()
    return mailbox_key(user)


@router.get("/me/voicemail", response_model=MailboxOut, summary="my voicemail messages")
async def my_voicemail(who: Principal = Depends(principal),
                       ctx: ApiContext = Depends(context)) -> MailboxOut:
    owner = _mailbox(ctx, who)
    service = ctx.switch.voicemail
    assert service is not None
    new, old = service.counts(owner)
    return MailboxOut(mailbox=owner, new=new, old=old, messages=[
        MessageOut(id=m.id, caller=m.caller, caller_name=m.caller_name,
                   received_at=m.received_at,
                   time=dt.datetime.fromtimestamp(m.received_at, dt.UTC).isoformat(),
                   duration=round(m.duration, 2), urgent=m.urgent, heard=m.heard)
        for m in service.messages(owner)])


def _message_id(message_id: str) -> str:
    if not _MESSAGE_ID.fullmatch(message_id):
        raise not_found()
    return message_id


@router.get("/me/voicemail/{message_id}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/wav": {}}}}, summary="a message's WAV")
async def my_message_audio(message_id: str, who: Principal = Depends(principal),
                           ctx: ApiContext = Depends(context)) -> FileResponse:
    owner = _mailbox(ctx, who)
    assert ctx.switch.voicemail is not None
    path = ctx.switch.voicemail.audio_file(owner, _message_id(message_id))
    if path is None or not path.is_file():
        raise not_found()
    return FileResponse(path, media_type="audio/wav")


@router.post("/me/voicemail/{message_id}/heard", status_code=204, summary="mark heard")
async def my_message_heard(message_id: str, who: Principal = Depends(principal),
                           ctx: ApiContext = Depends(context)) -> Response:
    owner = _mailbox(ctx, who)
    assert ctx.switch.voicemail is not None
    if not await ctx.switch.voicemail.mark_heard(owner, _message_id(message_id)):
        raise not_found()
    return Response(status_code=204)


@router.delete("/me/voicemail/{message_id}", status_code=204, summary="delete a message")
async def my_message_delete(message_id: str, who: Principal = Depends(principal),
                            ctx: ApiContext = Depends(context)) -> Response:
    owner = _mailbox(ctx, who)
    assert ctx.switch.voicemail is not None
    if not await ctx.switch.voicemail.delete_message(owner, _message_id(message_id)):
        raise not_found()
    return Response(status_code=204)


class PinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str = Field(min_length=1, max_length=32, description="4 to 8 digits")


@router.put("/me/voicemail/pin", status_code=204, summary="change my voicemail PIN")
async def my_voicemail_pin(body: PinBody, request: Request,
                           who: Principal = Depends(principal),
                           ctx: ApiContext = Depends(context)) -> Response:
    from voicemail.pin import MAX_LENGTH, MIN_LENGTH, valid_pin

    owner = _mailbox(ctx, who)
    service = ctx.switch.voicemail
    assert service is not None
    if not valid_pin(body.pin):
        raise HTTPException(422, f"pin: {MIN_LENGTH} to {MAX_LENGTH} digits")
    await service.change_pin(ctx.me(who), body.pin)  # the mailbox made first when new
    await ctx.audit(who, request, "voicemail.pin", owner, customer=who.customer)
    return Response(status_code=204)


@router.put("/me/voicemail/greetings/{kind}", status_code=204,
            openapi_extra={"requestBody": {"required": True, "content": {
                "audio/wav": {"schema": {"type": "string", "format": "binary"}},
                "audio/mpeg": {"schema": {"type": "string", "format": "binary"}}}}},
            summary="upload my busy, unavailable or name greeting (WAV or MP3 body)")
async def my_greeting(kind: Annotated[str, PathParam(pattern="^(unavailable|busy|name)$")],
                      request: Request, who: Principal = Depends(principal),
                      ctx: ApiContext = Depends(context)) -> Response:
    """Decoded once to 8 kHz mono (the announcements' code, off the loop) and stored as
    the greeting the phone menu would have recorded."""
    import asyncio
    import contextlib
    import os
    import tempfile
    from pathlib import Path

    from media.audio import write_wav
    from switch.announcements import AnnouncementError, decode_upload
    from voicemail.store import Greeting

    owner = _mailbox(ctx, who)
    service = ctx.switch.voicemail
    assert service is not None
    body = await request.body()
    if not body:
        raise HTTPException(400, "the body is the audio file")
    fd, upload = tempfile.mkstemp(prefix="wte-greeting-", dir=ctx.data_dir)
    wav = f"{upload}.wav"
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        pcm = await asyncio.to_thread(decode_upload, Path(upload))
        await asyncio.to_thread(write_wav, wav, pcm)
        await service.change_greeting(ctx.me(who), Greeting(kind), Path(wav))
    except AnnouncementError as exc:
        raise HTTPException(422, str(exc)) from None
    finally:
        for leftover in (upload, wav):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
    await ctx.audit(who, request, "voicemail.greeting", f"{owner}/{kind}",
                    {"bytes": len(body)}, customer=who.customer)
    return Response(status_code=204)


@router.get("/me/calls", response_model=CallLogOut,
            summary="my placed, received and missed calls")
async def my_calls(limit: Annotated[int, Query(ge=1, le=500)] = 50, mark_read: bool = False,
                   who: Principal = Depends(principal),
                   ctx: ApiContext = Depends(context)) -> CallLogOut:
    user = ctx.me(who)
    service = ctx.switch.user_settings
    if service is None:
        raise not_found()
    got = await service.call_log(user, mark_read=mark_read, limit=limit)
    return CallLogOut(missed_unread=got.missed_unread, calls=[
        CallLogEntryOut(direction=e.direction, other=e.other, start=e.start,
                        seconds=e.seconds, disposition=e.disposition) for e in got.entries])
