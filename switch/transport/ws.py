"""SIP over WebSocket (RFC 7118) for softphones and WebRTC clients: WS and WSS listeners.

The WebSocket layer itself (RFC 6455 handshake, framing, masking, ping/pong, close) is the
sans-IO `websockets.server.ServerProtocol`; this module is the thin asyncio adapter that
feeds it bytes and carries SIP messages in and out of it.

- RFC 7118 section 4: the client must offer the `sip` subprotocol. A handshake without it
  is refused with HTTP 400 (websockets' default when the server lists subprotocols and the
  client offers none or none in common); the 101 answer selects `sip`.
- RFC 7118 section 5: one WebSocket message (text or binary, possibly fragmented) carries
  exactly one SIP message; no Content-Length framing is needed, but the message must parse
  (the runtime answers 400 or drops and counts it, as for a UDP datagram). A message larger
  than the runtime's `max_message_size` closes the connection with 1009 (RFC 6455 7.4.1).
- RFC 7118 section 5.1: messages to the client go as text frames when they are valid UTF-8,
  as binary frames otherwise (a binary body would make a text frame invalid).
- RFC 7118 section 5.2: Via transport WS/WSS; a WebSocket client cannot accept incoming
  connections, so responses and requests to it (also calls to a phone registered over WS)
  must reuse its connection.

How the runtime sends to a WS peer: each `WsConnection` is a `StreamConnection` registered
in the switch's one `StreamTransports` registry (`by_id`, `by_addr`, keyed by transport
name "WS"/"WSS"). `SipRuntime._send` already routes every non-UDP `Peer` to
`StreamTransports.send`, which finds the connection by `conn_id` (then by address) and calls
its `send(bytes)`; this class overrides `send` to wrap the message in a WebSocket frame. So
the runtime, the transaction layer and the registrar need no change; the connection ids
come from the same counter as TCP/TLS ones and never collide. The idle reaper and
`StreamTransports.close()` cover WS connections and listeners too.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from switch.transport.stream import StreamConnection, StreamTransports

log = logging.getLogger(__name__)
# websockets logs every opened/refused connection at INFO; one line per phone is noise here.
_protocol_log = logging.getLogger(__name__ + ".protocol")
_protocol_log.setLevel(logging.WARNING)

SIP_SUBPROTOCOL = Subprotocol("sip")  # RFC 7118 section 4 (IANA WebSocket subprotocol)
_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class WsConnection(StreamConnection):
    """One WebSocket connection carrying SIP: RFC 6455 via websockets, RFC 7118 framing."""

    def __init__(self, owner: StreamTransports, transport_name: str, max_size: int, *,
                 outbound: bool = False, preadmitted: bool = False) -> None:
        super().__init__(owner, transport_name, max_size, outbound=outbound,
                         preadmitted=preadmitted)
        self.ws = ServerProtocol(subprotocols=[SIP_SUBPROTOCOL], max_size=max_size,
                                 logger=_protocol_log)
        self._fragments: list[bytes] = []
        self.path = ""

    # -- inbound --

    def data_received(self, data: bytes) -> None:
        self.last_activity = asyncio.get_running_loop().time()
        self.ws.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._process()
        return None  # let asyncio close the transport

    def _process(self) -> None:
        events = self.ws.events_received()
        self._flush()
        for event in events:
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame) and event.opcode in _DATA_OPCODES:
                self._on_data_frame(event)
            # ping is answered with pong and close is echoed by ServerProtocol itself
            # (RFC 6455 5.5.1-5.5.3); only their replies need flushing
        self._flush()

    def _handshake(self, request: Request) -> None:
        # RFC 6455 4.2.2 + RFC 7118 section 4: 101 with `Sec-WebSocket-Protocol: sip`, or an
        # HTTP error (400 when the client did not offer `sip`) and the connection closes.
        response = self.ws.accept(request)
        self.ws.send_response(response)
        self.path = request.path
        if response.status_code == 101:
            log.debug("%s connection %d from %s:%d opened (path %s)", self.name, self.conn_id,
                      *self.remote, request.path)
        else:
            self.owner.framing_errors += 1
            log.info("refused %s handshake from %s:%d: %d %s", self.name, *self.remote,
                     response.status_code, self.ws.handshake_exc)

    def _on_data_frame(self, frame: Frame) -> None:
        # RFC 6455 5.4: a message may be fragmented; websockets checks the opcode sequence
        # and the total size (max_size), we only join the pieces.
        self._fragments.append(bytes(frame.data))
        if not frame.fin:
            return
        message = b"".join(self._fragments)
        self._fragments.clear()
        if not message.strip():
            # not a SIP message; a double-CRLF keep-alive (RFC 5626 4.4.1, sent by some
            # WebSocket stacks too) gets its single-CRLF pong, an empty message is ignored
            if message == b"\r\n\r\n":
                self.send(b"\r\n")
            return
        assert self.peer is not None
        self.delivered()
        edge = self.owner.ws_edge
        if edge is not None:  # issue 23: browsers' WebRTC SDP rewritten (switch.webrtc.edge)
            rewritten = edge.inbound(self, message)
            if rewritten is None:
                return
            message = rewritten
        self.owner.deliver(message, self.peer)  # RFC 7118 section 5: one message, one frame

    def connection_lost(self, exc: Exception | None) -> None:
        edge = self.owner.ws_edge
        if edge is not None:
            edge.closed(self)
        super().connection_lost(exc)

    # -- outbound --

    def send(self, data: bytes) -> None:
        """Send one SIP message; through the WebRTC edge when there is one (issue 23)."""
        edge = self.owner.ws_edge
        if edge is not None and data.strip():
            edge.outbound(self, data)
        else:
            self.send_frame(data)

    def send_frame(self, data: bytes) -> None:
        """Send one SIP message as one WebSocket message (RFC 7118 section 5)."""
        if self.ws.state is not State.OPEN or self.transport is None or not self.ready:
            log.debug("%s connection %d not open; message dropped", self.name, self.conn_id)
            return
        self.note_sent(data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            self.ws.send_binary(data)  # RFC 7118 5.1: non-UTF-8 content needs a binary frame
        else:
            self.ws.send_text(data)
        self._flush()
        self.last_activity = asyncio.get_running_loop().time()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                if not transport.is_closing():
                    transport.write(chunk)
            else:
                # b"" = end of stream: after a close handshake or a refused handshake the
                # server closes the TCP connection first (RFC 6455 7.1.1); buffered
                # writes are flushed before the socket closes.
                transport.close()


async def listen_ws(streams: StreamTransports, name: str, host: str, port: int,
                    ssl_ctx: ssl.SSLContext | None = None) -> int:
    """Listen for SIP over WebSocket ("WS") or secure WebSocket ("WSS", with `ssl_ctx`).

    The listener is one of `streams`' (`StreamTransports.listen`) and connections join its
    registry, so sending, the caps and deadlines of `streams.limits`
    (:mod:`switch.transport.limits`) and `streams.close()` treat them like TCP/TLS ones (a
    WSS connection holds its slot during its TLS handshake, like TLS). The WebSocket
    handshake and the first SIP message must arrive within `first_message_timeout`.
    Returns the bound port.
    """
    if name not in ("WS", "WSS"):
        raise ValueError(f"not a WebSocket transport: {name}")
    if (name == "WSS") != (ssl_ctx is not None):
        raise ValueError("WSS needs a TLS context, WS must not have one")
    return await streams.listen(name, host, port, ssl_ctx, factory=WsConnection)
