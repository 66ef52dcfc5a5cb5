"""Announcements over the API (issue 18, service description 4.1): a customer admin
uploads a WAV or MP3 as the request body; it is checked and decoded once to 8 kHz mono
PCM by the same code as `wte announcements add` (switch/announcements.py, off the event
loop), and the plan's `greeting:`/`prompt:` names then play it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel

from switch.announcements import AnnouncementError, add_announcement, list_announcements

from .auth import Principal
from .rest import ApiContext, admin, context
from .rest_directory import CustomerId

router = APIRouter(tags=["announcements"])
MAX_UPLOAD = 8 * 1024 * 1024  # also enforced by rest.BodyLimit for this path


class AnnouncementOut(BaseModel):
    customer: str
    name: str
    seconds: float


@router.get("/customers/{customer_id}/announcements", response_model=list[AnnouncementOut])
async def announcements(customer_id: CustomerId, who: Principal = Depends(admin),
                        ctx: ApiContext = Depends(context)) -> list[AnnouncementOut]:
    c = ctx.customer(who, customer_id)
    return [AnnouncementOut(customer=s.customer, name=s.name, seconds=round(s.seconds, 2))
            for s in list_announcements(ctx.data_dir, c.id)]


@router.put("/customers/{customer_id}/announcements/{name}", response_model=AnnouncementOut,
            status_code=201,
            openapi_extra={"requestBody": {"required": True, "content": {
                "audio/wav": {"schema": {"type": "string", "format": "binary"}},
                "audio/mpeg": {"schema": {"type": "string", "format": "binary"}}}}},
            summary="upload an announcement (WAV or MP3 body), decoded once to 8 kHz")
async def upload(customer_id: CustomerId,
                 name: Annotated[str, PathParam(pattern="^[a-z0-9_-]{1,64}$")],
                 request: Request, who: Principal = Depends(admin),
                 ctx: ApiContext = Depends(context)) -> AnnouncementOut:
    c = ctx.customer(who, customer_id)
    body = await request.body()
    if not body:
        raise HTTPException(400, "the body is the audio file")
    fd, tmp = tempfile.mkstemp(prefix="wte-upload-", dir=ctx.data_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        stored = await asyncio.to_thread(add_announcement, Path(tmp), customer=c.id,
                                         name=name, customers={c.id},
                                         data_dir=ctx.data_dir)
    except AnnouncementError as exc:
        raise HTTPException(422, str(exc)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    await ctx.audit(who, request, "announcement.upload", f"{c.id}/{name}",
                    {"seconds": round(stored.seconds, 2), "bytes": len(body)}, customer=c.id)
    return AnnouncementOut(customer=c.id, name=name, seconds=round(stored.seconds, 2))
