"""Composition root: builds the switch from its configuration and runs it.

Everything that touches the outside world is created here and handed to the layers that
need it. Signals: SIGINT/SIGTERM drain and stop, SIGHUP reloads the dialplan (a plan that
does not validate is refused and the running one stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialplan.yamlsource import ConfigError, load_yaml_file
from switch.core_handlers import handle_options
from switch.runtime import SipRuntime
from switch.settings import SwitchSettings, settings_from_source
from switch.transport.stream import StreamTransports
from switch.transport.tls import client_context, ensure_self_signed, server_context
from switch.transport.udp import start_udp
from switch.transport.ws import listen_ws

log = logging.getLogger("switch")


@dataclass
class ServeOptions:
    config: Path
    data_dir: Path = Path("var")
    sip_host: str | None = None
    sip_port: int | None = None


@dataclass
class Switch:
    """A running switch: settings, runtime, transports and services."""

    options: ServeOptions
    settings: SwitchSettings
    runtime: SipRuntime
    streams: StreamTransports
    services: list[Any] = field(default_factory=list)
    listening: list[tuple[str, str, int]] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    plan_holder: Any = None
    accounts: Any = None
    registration: Any = None
    calls: Any = None
    sip_address: tuple[str, int, int, int, int] = ("127.0.0.1", 5060, 5061, 5062, 5063)

    async def start(self) -> None:
        sip = self.settings.sip
        host = self.options.sip_host or sip.host
        port = sip.port if self.options.sip_port is None else self.options.sip_port
        explicit = self.options.sip_port is not None
        tls_port = port + 1 if (explicit or sip.tls_port is None) else sip.tls_port
        # SIP over WebSocket (RFC 7118): WS on P+2, WSS on P+3 with the TLS certificate
        ws_port = port + 2 if (explicit or sip.ws_port is None) else sip.ws_port
        wss_port = port + 3 if (explicit or sip.wss_port is None) else sip.wss_port
        self.sip_address = (host, port, tls_port, ws_port, wss_port)
        for service in self.services:
            await service.start(self)
        self.runtime.udp = await start_udp(self.runtime.deliver, host, port)
        self.runtime.streams = self.streams
        self._listening("UDP", host, self.runtime.udp.port)
        tcp_port = await self.streams.listen("TCP", host, port)
        self._listening("TCP", host, tcp_port)
        if sip.tls_cert and sip.tls_key:
            cert, key = Path(sip.tls_cert), Path(sip.tls_key)
        else:
            cert, key = ensure_self_signed(self.options.data_dir / "tls", host)
        tls_ctx = server_context(cert, key)
        tls_bound = await self.streams.listen("TLS", host, tls_port, tls_ctx)
        self._listening("TLS", host, tls_bound)
        # WebSocket connections join self.streams' registry (see switch/transport/ws.py)
        self._listening("WS", host, await listen_ws(self.streams, "WS", host, ws_port))
        self._listening("WSS", host, await listen_ws(self.streams, "WSS", host, wss_port,
                                                     tls_ctx))

    def http_port(self) -> int:
        """The HTTP API port: configured, else the SIP port + 4 (WS and WSS take + 2, + 3)."""
        if self.settings.http.port is not None and self.options.sip_port is None:
            return self.settings.http.port
        sip_port = self.settings.sip.port if self.options.sip_port is None else self.options.sip_port
        return sip_port + 4 if sip_port else 0

    def _listening(self, transport: str, host: str, port: int) -> None:
        self.listening.append((transport, host, port))
        log.info("listening transport=%s address=%s:%d", transport, host, port)

    async def stop(self) -> None:
        log.info("stopping: draining transactions in flight for up to %.1f s",
                 self.settings.drain_seconds)
        self.runtime.draining = True
        # services end what they own while the transports still carry it (calls get BYE)
        for service in self.services:
            before_close = getattr(service, "before_transports_close", None)
            if before_close is not None:
                with contextlib.suppress(Exception):
                    before_close(self)
        await self.runtime.drain(self.settings.drain_seconds)
        if self.runtime.udp is not None:
            self.runtime.udp.close()
        await self.streams.close()
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                await service.stop(self)
        self.stopped.set()
        log.info("stopped")

    def reload(self) -> None:
        for service in self.services:
            reload = getattr(service, "reload", None)
            if reload is not None:
                reload(self)


def build_switch(options: ServeOptions) -> Switch:
    """Load and validate the configuration (raises ConfigError) and assemble the switch."""
    source = load_yaml_file(options.config)
    settings = settings_from_source(source)
    runtime = SipRuntime(
        t1=settings.transaction.t1, t2=settings.transaction.t2, t4=settings.transaction.t4,
        max_message_size=settings.sip.max_message_size, user_agent=settings.sip.user_agent,
    )
    runtime.register_handler("OPTIONS", handle_options)
    streams = StreamTransports(runtime.deliver, max_size=settings.sip.max_message_size,
                               idle_timeout=settings.sip.tcp_idle_timeout,
                               client_ssl=client_context(verify=False))
    switch = Switch(options, settings, runtime, streams)
    from switch.services import build_services

    switch.services.extend(build_services(switch, source))
    return switch


async def serve(options: ServeOptions) -> int:
    try:
        switch = build_switch(options)
    except ConfigError as exc:
        for issue in exc.issues:
            log.error("configuration refused: %s", issue)
        return 2
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    loop.add_signal_handler(signal.SIGHUP, switch.reload)
    try:
        await switch.start()
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        await switch.stop()
        return 1
    # Long-lived objects (plan, bindings) never need collecting: keep them out of the GC's
    # generations and make collections rarer, so latency stays flat under load.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    log.info("ready")
    await stop_requested.wait()
    await switch.stop()
    return 0


def run(options: ServeOptions) -> int:
    try:
        import uvloop
    except ImportError:
        log.info("event loop: asyncio")
        return asyncio.run(serve(options))
    log.info("event loop: uvloop")
    return uvloop.run(serve(options))
