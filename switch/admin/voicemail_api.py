"""Visual voicemail over the switch's HTTP port (issue 13): a user's own mailbox.

- `GET /voicemail/v1/messages`: the messages (id, caller, caller_name, received_at, time,
  duration, urgent, heard) and the new/old counts;
- `GET /voicemail/v1/messages/{id}/audio`: the WAV;
- `POST /voicemail/v1/messages/{id}/heard`: mark it heard;
- `DELETE /voicemail/v1/messages/{id}`: delete it.

Authenticated with the user's own SIP credentials (HTTP Basic, RFC 7617, checked against
the stored HA1 by `HttpApi._authenticate`, through the same failure guard as SIP digest:
late answers once slowed, 429 once blocked); wrong credentials answer 401. A message of
another mailbox answers 404, the same as a message that does not exist: nothing says it
exists. Every change goes through the voicemail service, so the message-waiting lamp
follows.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dialplan import PackFeature, User
from switch.services.voicemail import mailbox_key

if TYPE_CHECKING:
    from switch.services.voicemail import VoicemailService
    from switch.storage.voicemail import MessageRecord

    from .http import HttpApi

_ID = re.compile(r"[0-9a-f]{1,32}")


def mount(app: web.Application, api: HttpApi) -> None:
    routes = VoicemailRoutes(api)
    app.router.add_get("/voicemail/v1/messages", routes.list_messages)
    app.router.add_get("/voicemail/v1/messages/{id}/audio", routes.audio)
    app.router.add_post("/voicemail/v1/messages/{id}/heard", routes.heard)
    app.router.add_delete("/voicemail/v1/messages/{id}", routes.delete)


def _json(m: MessageRecord) -> dict[str, Any]:
    return {"id": m.id, "caller": m.caller, "caller_name": m.caller_name,
            "received_at": m.received_at,
            "time": dt.datetime.fromtimestamp(m.received_at, dt.UTC).isoformat(),
            "duration": round(m.duration, 2), "urgent": m.urgent, "heard": m.heard}


_NOT_FOUND = {"error": "no such message"}


class VoicemailRoutes:
    def __init__(self, api: HttpApi) -> None:
        self.api = api

    async def _owner(self, request: web.Request) -> tuple[VoicemailService, str] | web.Response:
        """The authenticated user's mailbox (`customer:number`) and the service."""
        account = await self.api._authenticate(request)
        if isinstance(account, web.Response):
            return account
        sw = self.api.switch
        service = getattr(sw, "voicemail", None) if sw is not None else None
        user = sw.accounts.user_for_aor(account.aor) if sw is not None else None
        if service is None or not isinstance(user, User) or not user.has(PackFeature.VOICEMAIL):
            return web.json_response({"error": "no mailbox"}, status=404)  # Workspace lines
        return service, mailbox_key(user)

    def _message_id(self, request: web.Request) -> str | None:
        mid = request.match_info.get("id", "")
        return mid if _ID.fullmatch(mid) else None

    async def list_messages(self, request: web.Request) -> web.Response:
        got = await self._owner(request)
        if isinstance(got, web.Response):
            return got
        service, owner = got
        new, old = service.counts(owner)
        return web.json_response({"mailbox": owner, "new": new, "old": old,
                                  "messages": [_json(m) for m in service.messages(owner)]})

    async def audio(self, request: web.Request) -> web.StreamResponse:
        got = await self._owner(request)
        if isinstance(got, web.Response):
            return got
        service, owner = got
        mid = self._message_id(request)
        path = service.audio_file(owner, mid) if mid is not None else None
        if path is None or not path.is_file():
            return web.json_response(_NOT_FOUND, status=404)
        return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                               "Content-Disposition":
                                               f'attachment; filename="message-{mid}.wav"'})

    async def heard(self, request: web.Request) -> web.Response:
        got = await self._owner(request)
        if isinstance(got, web.Response):
            return got
        service, owner = got
        mid = self._message_id(request)
        if mid is None or not await service.mark_heard(owner, mid):
            return web.json_response(_NOT_FOUND, status=404)
        return web.json_response({"id": mid, "heard": True})

    async def delete(self, request: web.Request) -> web.Response:
        got = await self._owner(request)
        if isinstance(got, web.Response):
            return got
        service, owner = got
        mid = self._message_id(request)
        if mid is None or not await service.delete_message(owner, mid):
            return web.json_response(_NOT_FOUND, status=404)
        return web.Response(status=204)

