"""The WebRTC engine: a scenario phone of `kind: webrtc` is a browser (issue 23).

It is played by `scenarios.webrtc_client` whatever `--engine` says (as carriers are played
by the own engine): SIP over WebSocket to the switch's WS port (SIP port + 2), WebRTC media
with aiortc (ICE, DTLS-SRTP, Opus), a short-lived SIP password fetched from the switch's
HTTP API (SIP port + 4) with the phone's own password, as the softphone page does.

What it plays: register/unregister, dial, answer, reject, hangup (CANCEL while ringing),
hold/resume, `send_dtmf` with `method: info` (a browser has no RFC 4733 here), play_tone,
expect_tone/expect_silence. Not: transfer, subscriptions, expect_dtmf, play_wav.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Coroutine
from typing import Any

from switch.sip import Request, Response

from .engine import CallView, Engine, PhoneDriver, Pump
from .model import CallState, Phone
from .webrtc_client import BrowserCall, BrowserClient, open_ws


def fetch_credentials(host: str, http_port: int, user: str, password: str
                      ) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/webrtc/credentials with HTTP Basic: (status, JSON body)."""
    req = urllib.request.Request(f"http://{host}:{http_port}/api/v1/webrtc/credentials",
                                 method="POST", data=b"")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, {}


class WebRtcPhone(PhoneDriver):
    engine = "webrtc"

    def __init__(self, spec: Phone, target: tuple[str, int]) -> None:
        super().__init__(spec)
        self.host, self.port = target
        self.client: BrowserClient | None = None
        self._ws: Any = None
        self._browser_calls: dict[str, BrowserCall] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    # -- plumbing --

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _view(self, call_id: str) -> CallView | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    def _on_response(self, resp: Response) -> None:
        text = resp.to_bytes().decode("utf-8", "replace")
        self.log.received(text, "switch")
        view = self._view(resp.call_id)
        if view is None or resp.cseq.method != "INVITE":
            return
        self.received.note("response", text)
        view.last_status = resp.status
        if resp.status in (180, 183) and view.state is CallState.CALLING:
            view.set(CallState.RINGING)
        elif resp.status >= 300 and view.state in (CallState.CALLING, CallState.RINGING):
            view.final_status = resp.status
            view.set(CallState.DISCONNECTED)
        elif 200 <= resp.status < 300 and view.final_status is None:
            view.final_status = resp.status

    def _on_request(self, req: Request) -> None:
        text = req.to_bytes().decode("utf-8", "replace")
        self.log.received(text, "switch")
        view = self._view(req.call_id)
        if req.method == "INVITE" and req.to.tag is None and self.client is not None:
            self.received.note("invite", text)
            view = CallView(req.call_id, outgoing=False)
            view.set(CallState.INCOMING)
            view.set(CallState.RINGING)  # the client answered 180 at once
            self.calls.append(view)
            call = self.client.calls.get(req.call_id)
            if call is not None:
                self._browser_calls[req.call_id] = call
        elif req.method == "ACK" and view is not None and not view.outgoing:
            if view.state is CallState.RINGING:
                view.set(CallState.CONFIRMED)
        elif req.method in ("BYE", "CANCEL") and view is not None:
            view.set(CallState.DISCONNECTED)

    def _call(self) -> BrowserCall:
        view = self.current
        call = self._browser_calls.get(view.call_id) if view is not None else None
        if call is None or self.client is None:
            raise self.unsupported("no call to act on")
        return call

    # -- lifecycle --

    async def start(self) -> None:
        self._ws = await open_ws(self.host, self.port + 2).__aenter__()
        self.client = BrowserClient(self._ws, self.host, self.port, self.spec.account, "",
                                    tone=0.0)
        self.client.on_response = self._on_response
        self.client.on_request = self._on_request

    async def stop(self) -> None:
        if self.client is not None:
            for view in self.calls:
                call = self._browser_calls.get(view.call_id)
                if call is not None and view.state is CallState.CONFIRMED:
                    with contextlib.suppress(Exception):
                        await self.client.hang_up(call)
            await self.client.close()
        for task in list(self._tasks):
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    # -- actions --

    def register(self, expires: int) -> None:
        client = self.client
        assert client is not None

        async def run() -> None:
            loop = asyncio.get_running_loop()
            status, creds = await loop.run_in_executor(
                None, fetch_credentials, self.host, self.port + 4, self.spec.account,
                self.spec.password)
            if status != 200:
                self.reg_results.append(403 if status == 401 else status)
                return
            client.password = str(creds["password"])
            resp = await client.register(expires)
            self.reg_results.append(resp.status)

        self._spawn(run())

    def dial(self, target: str, from_user: str, headers: tuple[tuple[str, str], ...]) -> None:
        if headers:
            raise self.unsupported("extra headers on a browser's INVITE")
        client = self.client
        assert client is not None
        view = CallView(f"webrtc-{len(self.calls)}-{id(self):x}", outgoing=True)
        view.set(CallState.CALLING)
        self.calls.append(view)

        async def run() -> None:
            task = asyncio.ensure_future(client.call(target, call_id=view.call_id))
            while view.call_id not in client.calls:
                await asyncio.sleep(0)
            self._browser_calls[view.call_id] = client.calls[view.call_id]
            call = await task
            if call.final is not None and call.final.status < 300:
                view.set(CallState.CONFIRMED)

        self._spawn(run())

    def answer(self) -> None:
        client, call = self.client, self._call()
        assert client is not None
        self._spawn(client.answer(call))

    def reject(self, status: int) -> None:
        client, call = self.client, self._call()
        assert client is not None
        view = self.current
        self._spawn(client.reject(call, status))
        if view is not None:
            view.set(CallState.DISCONNECTED)

    def hangup(self) -> None:
        client, call = self.client, self._call()
        assert client is not None
        view = self.current
        if view is not None and view.outgoing and view.state in (CallState.CALLING,
                                                                  CallState.RINGING):
            self._spawn(client.cancel(call))  # the 487 ends the call
            return
        self._spawn(client.hang_up(call))
        if view is not None:
            view.set(CallState.DISCONNECTED)

    def hold(self, on: bool) -> None:
        client, call = self.client, self._call()
        assert client is not None
        view = self.current

        async def run() -> None:
            resp = await client.reinvite(call, "sendonly" if on else "sendrecv")
            if resp.status == 200 and view is not None:
                view.set(CallState.HELD if on else CallState.CONFIRMED)

        self._spawn(run())

    def send_dtmf(self, digits: str, method: str) -> None:
        if method != "info":
            raise self.unsupported(f"send_dtmf ({method}): a browser sends SIP INFO")
        client, call = self.client, self._call()
        assert client is not None

        async def run() -> None:
            for d in digits:
                await client.info_digit(call, d)

        self._spawn(run())

    def play_tone(self, frequency: float, seconds: float) -> None:
        track = self._call().tone
        if track is None:
            raise self.unsupported("play_tone before the call has media")
        track.freq = frequency
        asyncio.get_running_loop().call_later(seconds, setattr, track, "freq", 0.0)

    async def listen(self, seconds: float, pump: Pump) -> tuple[list[float], int]:
        heard = self._call().heard
        start = len(heard.samples())
        await pump.sleep(seconds)
        samples = heard.samples()[start:]
        return [float(x) for x in samples], 8000


class WebRtcEngine(Engine):
    name = "webrtc"

    def phone(self, spec: Phone, target: tuple[str, int]) -> PhoneDriver:
        return WebRtcPhone(spec, target)
