"""A "browser" for tests and scenarios: SIP over WebSocket (the `websockets` client, RFC 7118) and an aiortc
RTCPeerConnection playing a tone and recording what it hears. No browser needed.

It behaves as browser SIP stacks do: `+sip.ice` in its Contact (RFC 5768), a `.invalid`
Via host (RFC 7118 section 5.2), non-trickle offers with every candidate, DTLS-SRTP. It is
an independent implementation of the media side (aiortc in the test process, its own ICE
agent and DTLS keys); only the digest computation is shared with the scenario client.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from scenarios.digest_client import authorization
from switch.sip import Request, Response, parse_message

TIMEOUT = 10.0
RATE = 8000


class ToneTrack(MediaStreamTrack):
    """A sine tone at `freq` Hz, 20 ms frames at 8 kHz (aiortc resamples for Opus)."""

    kind = "audio"

    def __init__(self, freq: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._n / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(160) + self._n) / RATE
        pcm = (self.amplitude * 32767 * np.sin(2 * np.pi * self.freq * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._n
        frame.time_base = fractions.Fraction(1, RATE)
        self._n += 160
        return frame


class Heard:
    """What the client hears, resampled to 8 kHz mono."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray[Any, Any]] = []
        self.task: asyncio.Task[None] | None = None

    def start(self, track: MediaStreamTrack) -> None:
        self.task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            for out in resampler.resample(frame):
                self.chunks.append(out.to_ndarray().reshape(-1).copy())

    def samples(self) -> np.ndarray[Any, Any]:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    def clear(self) -> None:
        self.chunks.clear()

    def dominant(self, *, skip: float = 0.5, last: float | None = None) -> tuple[float, float]:
        """(frequency in Hz, RMS) of the loudest tone after `skip` s (or in the `last` s)."""
        data = self.samples().astype(np.float64)
        data = data[-int(last * RATE):] if last is not None else data[int(skip * RATE):]
        if len(data) < RATE // 10:
            return 0.0, 0.0
        rms = float(np.sqrt(np.mean(data**2)))
        spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
        spectrum[0] = 0
        freqs = np.fft.rfftfreq(len(data), 1.0 / RATE)
        return float(freqs[int(np.argmax(spectrum))]), rms


@dataclass
class BrowserCall:
    call_id: str
    pc: RTCPeerConnection
    heard: Heard
    local_tag: str
    remote_tag: str = ""
    invite: Request | None = None  # an incoming call's INVITE
    remote_target: str = ""
    cseq: int = 1
    outgoing: bool = True
    remote_uri: str = ""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    final: Response | None = None
    sdp_version: int = 0
    tone: ToneTrack | None = None
    invite_text: str = ""  # our INVITE as last sent (CANCEL copies its Via, RFC 3261 9.1)


class BrowserClient:
    def __init__(self, ws: ClientConnection, host: str, port: int, user: str, password: str,
                 *, tone: float, codecs: tuple[str, ...] = ("opus", "PCMU")) -> None:
        self.ws = ws
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.tone = tone
        self.codecs = codecs
        self.via_host = secrets.token_hex(5) + ".invalid"
        self.contact = (f"<sip:{secrets.token_hex(4)}@{self.via_host};transport=ws>"
                        ";+sip.ice")
        self.from_tag = secrets.token_hex(4)
        self.responses: dict[str, asyncio.Queue[Response]] = {}
        self.incoming: asyncio.Queue[BrowserCall] = asyncio.Queue()
        self.calls: dict[str, BrowserCall] = {}
        self.requests_seen: list[Request] = []
        # what a scenario driver watches: every response, and every request (after the
        # client has handled it)
        self.on_response: Callable[[Response], None] | None = None
        self.on_request: Callable[[Request], None] | None = None
        self._reader = asyncio.ensure_future(self._read())

    # -- plumbing --

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for data in self.ws:
                msg = parse_message(data.encode() if isinstance(data, str) else data)
                if isinstance(msg, Response):
                    self.responses.setdefault(msg.call_id, asyncio.Queue()).put_nowait(msg)
                    if self.on_response is not None:
                        self.on_response(msg)
                else:
                    await self._on_request(msg)
                    if self.on_request is not None:
                        self.on_request(msg)

    async def _on_request(self, req: Request) -> None:
        self.requests_seen.append(req)
        if req.method == "ACK":
            return
        if req.method == "INVITE" and req.to.tag is None:
            new = BrowserCall(req.call_id, self._pc(), Heard(), secrets.token_hex(4),
                              remote_tag=req.from_.tag or "", invite=req, outgoing=False,
                              remote_target=_contact(req))
            self.calls[req.call_id] = new
            await self.send(self._response(req, 180, "Ringing", new.local_tag))
            self.incoming.put_nowait(new)
            return
        call = self.calls.get(req.call_id)
        if req.method == "BYE" and call is not None:
            await self.send(self._response(req, 200, "OK", call.local_tag))
            call.ended.set()
            await call.pc.close()
            return
        if req.method == "CANCEL" and call is not None:
            await self.send(self._response(req, 200, "OK", call.local_tag))
            if call.invite is not None:  # RFC 3261 9.2: the INVITE ends with 487
                await self.send(self._response(call.invite, 487, "Request Terminated",
                                               call.local_tag))
            call.ended.set()
            return
        await self.send(self._response(req, 200, "OK", call.local_tag if call else None))

    def _response(self, req: Request, status: int, reason: str, tag: str | None,
                  body: str = "") -> str:
        to = str(req.headers.get("To"))
        if tag and ";tag=" not in to:
            to += f";tag={tag}"
        vias = "".join(f"Via: {v}\r\n" for v in req.headers.get_all("Via"))
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        return (f"SIP/2.0 {status} {reason}\r\n{vias}From: {req.headers.get('From')}\r\n"
                f"To: {to}\r\nCall-ID: {req.call_id}\r\nCSeq: {req.headers.get('CSeq')}\r\n"
                f"Contact: {self.contact}\r\n{ctype}Content-Length: {len(body.encode())}\r\n"
                f"\r\n{body}")

    def _request(self, method: str, uri: str, *, call_id: str, cseq: int, to: str,
                 from_tag: str, extra: str = "", body: str = "",
                 content_type: str = "application/sdp") -> str:
        branch = "z9hG4bK" + secrets.token_hex(8)
        ctype = f"Content-Type: {content_type}\r\n" if body else ""
        return (f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/WS {self.via_host};branch={branch}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{self.user}@{self.host}>;tag={from_tag}\r\n"
                f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: {self.contact}\r\nUser-Agent: wte-test-browser\r\n{extra}{ctype}"
                f"Content-Length: {len(body.encode())}\r\n\r\n{body}")

    async def _final(self, call_id: str, timeout: float = TIMEOUT) -> Response:
        q = self.responses.setdefault(call_id, asyncio.Queue())
        while True:
            resp = await asyncio.wait_for(q.get(), timeout)
            if resp.status >= 200:
                return resp

    def _pc(self) -> RTCPeerConnection:
        return RTCPeerConnection()

    def _setup_media(self, call: BrowserCall) -> None:
        pc = call.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                call.heard.start(track)

    def _prefer(self, transceiver: Any) -> None:
        caps = RTCRtpSender.getCapabilities("audio").codecs
        order = [c.lower() for c in self.codecs]
        chosen = sorted((c for c in caps if c.mimeType.split("/")[1].lower() in order),
                        key=lambda c: order.index(c.mimeType.split("/")[1].lower()))
        transceiver.setCodecPreferences(chosen)

    # -- what a softphone does --

    async def register(self, expires: int = 300) -> Response:
        call_id = secrets.token_hex(8)
        uri = f"sip:{self.host}:{self.port}"
        to = f"<sip:{self.user}@{self.host}>"
        extra = f"Expires: {expires}\r\n"
        await self.send(self._request("REGISTER", uri, call_id=call_id, cseq=1, to=to,
                                      from_tag=self.from_tag, extra=extra))
        first = await self._final(call_id)
        if first.status != 401:
            return first
        creds = authorization(first.headers.get_all("WWW-Authenticate"), method="REGISTER",
                              uri=uri, username=self.user, password=self.password)
        assert creds is not None
        await self.send(self._request("REGISTER", uri, call_id=call_id, cseq=2, to=to,
                                      from_tag=self.from_tag,
                                      extra=extra + f"Authorization: {creds}\r\n"))
        return await self._final(call_id)

    async def call(self, target: str, call_id: str | None = None) -> BrowserCall:
        """INVITE `target` (a user or a feature code); returns once answered (or refused:
        `final` says which)."""
        call = BrowserCall(call_id or secrets.token_hex(8), self._pc(), Heard(),
                           secrets.token_hex(4))
        call.remote_uri = f"sip:{target}@{self.host}:{self.port}"
        self.calls[call.call_id] = call
        self._setup_media(call)
        call.tone = ToneTrack(self.tone)
        t = call.pc.addTransceiver(call.tone, direction="sendrecv")
        self._prefer(t)
        await call.pc.setLocalDescription(await call.pc.createOffer())
        offer = call.pc.localDescription.sdp
        to = f"<sip:{target}@{self.host}>"
        call.invite_text = self._request("INVITE", call.remote_uri, call_id=call.call_id,
                                         cseq=1, to=to, from_tag=call.local_tag, body=offer)
        await self.send(call.invite_text)
        final = await self._final(call.call_id)
        if final.status == 407:
            await self._ack(call, final, 1)
            creds = authorization(final.headers.get_all("Proxy-Authenticate"), method="INVITE",
                                  uri=call.remote_uri, username=self.user,
                                  password=self.password)
            assert creds is not None
            call.cseq = 2
            call.invite_text = self._request(
                "INVITE", call.remote_uri, call_id=call.call_id, cseq=2, to=to,
                from_tag=call.local_tag, extra=f"Proxy-Authorization: {creds}\r\n", body=offer)
            await self.send(call.invite_text)
            final = await self._final(call.call_id, 30.0)
        call.final = final
        if final.status >= 300:
            await self._ack(call, final, call.cseq)
            return call
        call.remote_tag = final.to.tag or ""
        call.remote_target = _contact(final) or call.remote_uri
        await self._ack(call, final, call.cseq)
        await call.pc.setRemoteDescription(
            RTCSessionDescription(final.body.decode(), "answer"))
        return call

    async def _ack(self, call: BrowserCall, final: Response, cseq: int) -> None:
        to = str(final.headers.get("To"))
        uri = call.remote_target if final.status < 300 and call.remote_target else call.remote_uri
        text = self._request("ACK", uri, call_id=call.call_id, cseq=cseq, to=to,
                             from_tag=call.local_tag).replace(f"CSeq: {cseq} ACK",
                                                               f"CSeq: {cseq} ACK")
        await self.send(text)

    async def answer(self, call: BrowserCall) -> None:
        assert call.invite is not None
        self._setup_media(call)
        await call.pc.setRemoteDescription(
            RTCSessionDescription(call.invite.body.decode(), "offer"))
        call.tone = ToneTrack(self.tone)
        for t in call.pc.getTransceivers():
            if t.kind == "audio":
                t.sender.replaceTrack(call.tone)
                t.direction = "sendrecv"
        await call.pc.setLocalDescription(await call.pc.createAnswer())
        await self.send(self._response(call.invite, 200, "OK", call.local_tag,
                                       call.pc.localDescription.sdp))

    async def info_digit(self, call: BrowserCall, digit: str) -> Response:
        """A digit as SIP INFO application/dtmf-relay (what the softphone page sends)."""
        call.cseq += 1
        to = f"<{call.remote_uri.split(';')[0]}>;tag={call.remote_tag}"
        from_tag = call.local_tag
        body = f"Signal={digit}\r\nDuration=160\r\n"
        uri = call.remote_target or call.remote_uri
        if not call.outgoing:
            assert call.invite is not None
            to = str(call.invite.headers.get("From"))
            uri = call.remote_target
        await self.send(self._request("INFO", uri, call_id=call.call_id, cseq=call.cseq, to=to,
                                      from_tag=from_tag, body=body,
                                      content_type="application/dtmf-relay"))
        return await self._final(call.call_id)

    async def cancel(self, call: BrowserCall) -> None:
        """CANCEL our INVITE: its Request-URI, Via (branch), From, To and CSeq number."""
        invite = parse_message(call.invite_text.encode())
        assert isinstance(invite, Request)
        text = (f"CANCEL {invite.uri} SIP/2.0\r\nVia: {invite.headers.get('Via')}\r\n"
                f"Max-Forwards: 70\r\nFrom: {invite.headers.get('From')}\r\n"
                f"To: {invite.headers.get('To')}\r\nCall-ID: {call.call_id}\r\n"
                f"CSeq: {invite.cseq.seq} CANCEL\r\nContent-Length: 0\r\n\r\n")
        await self.send(text)

    async def reject(self, call: BrowserCall, status: int, reason: str = "Rejected") -> None:
        assert call.invite is not None
        await self.send(self._response(call.invite, status, reason, call.local_tag))
        call.ended.set()

    async def reinvite(self, call: BrowserCall, direction: str) -> Response:
        """Hold (sendonly) or resume (sendrecv) as a browser SIP stack does: the same ICE
        and DTLS, another direction and o= version (RFC 3264 section 8.4)."""
        sdp = call.pc.localDescription.sdp
        for d in ("sendrecv", "sendonly", "recvonly", "inactive"):
            sdp = sdp.replace(f"a={d}\r\n", f"a={direction}\r\n")
        head, _, rest = sdp.partition("o=")
        fields = rest.split(" ", 3)
        call.sdp_version = max(call.sdp_version, int(fields[2])) + 1
        fields[2] = str(call.sdp_version)
        sdp = head + "o=" + " ".join(fields)
        call.cseq += 1
        to = f"<{call.remote_uri.split(';')[0]}>;tag={call.remote_tag}"
        await self.send(self._request("INVITE", call.remote_target or call.remote_uri,
                                      call_id=call.call_id, cseq=call.cseq, to=to,
                                      from_tag=call.local_tag, body=sdp))
        final = await self._final(call.call_id)
        await self._ack(call, final, call.cseq)
        return final

    async def hang_up(self, call: BrowserCall) -> None:
        if call.ended.is_set():
            await call.pc.close()
            return
        call.cseq += 1
        if call.outgoing:
            to = f"<{call.remote_uri.split(';')[0]}>;tag={call.remote_tag}"
        else:
            assert call.invite is not None
            to = str(call.invite.headers.get("From"))
        await self.send(self._request("BYE", call.remote_target or call.remote_uri,
                                      call_id=call.call_id, cseq=call.cseq, to=to,
                                      from_tag=call.local_tag))
        with contextlib.suppress(asyncio.TimeoutError):
            await self._final(call.call_id, 5.0)
        call.ended.set()
        await call.pc.close()

    async def close(self) -> None:
        for call in self.calls.values():
            with contextlib.suppress(Exception):
                await call.pc.close()
        self._reader.cancel()


def _contact(msg: Request | Response) -> str:
    contacts = msg.contacts
    if isinstance(contacts, list) and contacts:
        return str(contacts[0].uri)
    return ""


def open_ws(host: str, port: int) -> Any:
    return connect(f"ws://{host}:{port}/", subprotocols=[Subprotocol("sip")],
                   open_timeout=TIMEOUT, ping_interval=None)
