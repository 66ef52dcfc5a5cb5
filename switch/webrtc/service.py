"""The WebRTC service's lifecycle (issue 23): the edge on the WebSocket transports and the
short-lived credentials in the registrar's and the call service's digest checks."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from switch.settings import WebRtcSettings

from .credentials import EphemeralCredentials
from .edge import WebRtcEdge

log = logging.getLogger("switch.webrtc")


class WebRtcService:
    def __init__(self, settings: WebRtcSettings, media_host: str, streams: Any,
                 registration: Any) -> None:
        self.settings = settings
        self.streams = streams  # switch.transport.stream.StreamTransports
        self.registration = registration  # switch.registration.RegistrationService
        secret_text = os.environ.get(settings.secret_env, "")
        if len(secret_text) >= 16:
            secret = secret_text.encode()
        else:
            if secret_text:
                log.warning("%s is shorter than 16 characters: using a random secret",
                            settings.secret_env)
            secret = secrets.token_bytes(32)  # credentials die with this process
        self.credentials = EphemeralCredentials(secret, settings.credential_ttl)
        self.edge = WebRtcEdge(media_host, prefer=tuple(settings.prefer),
                               stun_servers=tuple(settings.stun_servers),
                               max_legs=settings.max_legs)

    async def start(self) -> None:
        self.registration.ephemeral = self.credentials
        if self.settings.enabled:
            self.streams.ws_edge = self.edge
            log.info("webrtc gateway on (aiortc, full ICE, DTLS-SRTP; prefer %s)",
                     ",".join(self.settings.prefer))

    async def stop(self) -> None:
        self.streams.ws_edge = None
        await self.edge.close()
