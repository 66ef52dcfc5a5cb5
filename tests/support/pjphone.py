"""pjsua2 (PJSIP) phones for system tests: an independent SIP implementation.

PJSIP allows one library instance per process, so one `PjLibrary` serves the whole test
session. It runs without worker threads: tests poll it with `wait_until`, so every callback
runs in the test's own thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pjsua2 as pj


class PjLibrary:
    """The pjsua2 endpoint with one UDP, one TCP and one TLS transport."""

    def __init__(self) -> None:
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.userAgent = "pjsua2-test"
        cfg.uaConfig.mainThreadOnly = False
        cfg.logConfig.level = 2
        cfg.logConfig.consoleLevel = 2
        cfg.medConfig.noVad = True
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        self.transports: dict[str, int] = {}
        for name, kind in (("UDP", pj.PJSIP_TRANSPORT_UDP), ("TCP", pj.PJSIP_TRANSPORT_TCP),
                           ("TLS", pj.PJSIP_TRANSPORT_TLS)):
            tc = pj.TransportConfig()
            tc.port = 0
            tc.boundAddress = "127.0.0.1"
            if name == "TLS":
                tc.tlsConfig.verifyServer = False
            self.transports[name] = self.ep.transportCreate(kind, tc)
        self.ep.libStart()

    def poll(self, ms: int = 10) -> None:
        self.ep.libHandleEvents(ms)

    def wait_until(self, cond: Callable[[], bool], timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            self.poll(10)
        return cond()

    def destroy(self) -> None:
        self.ep.libDestroy()


@dataclass
class RequestResult:
    status: int | None = None
    reason: str = ""
    raw: str = ""


class PjAccount(pj.Account):  # type: ignore[misc]
    """An account; registers when given a registrar, and can send out-of-dialog requests."""

    def __init__(self) -> None:
        super().__init__()
        self.reg_events: list[tuple[int, str, int]] = []
        self.request_results: list[RequestResult] = []

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 (pjsua2 API)
        self.reg_events.append((prm.code, prm.reason, prm.expiration))

    def onSendRequest(self, prm: pj.OnSendRequestParam) -> None:  # noqa: N802
        result = RequestResult()
        try:
            tsx = prm.e.body.tsxState.tsx
            result.status = tsx.statusCode
            result.reason = tsx.statusText
            result.raw = prm.e.body.tsxState.src.rdata.wholeMsg
        except Exception:  # the event may carry no rdata on timeout
            pass
        self.request_results.append(result)


@dataclass
class Phone:
    lib: PjLibrary
    account: PjAccount
    transport: str
    aor: str
    events: list[str] = field(default_factory=list)

    def send_request(self, method: str, target: str, timeout: float = 5.0) -> RequestResult:
        before = len(self.account.request_results)
        prm = pj.SendRequestParam()
        prm.method = method
        prm.txOption.targetUri = target
        self.account.sendRequest(prm)
        self.lib.wait_until(lambda: len(self.account.request_results) > before, timeout)
        if len(self.account.request_results) == before:
            return RequestResult()
        return self.account.request_results[-1]

    def wait_registration(self, predicate: Callable[[tuple[int, str, int]], bool],
                          timeout: float = 8.0) -> tuple[int, str, int] | None:
        seen = len(self.account.reg_events)
        ok = self.lib.wait_until(
            lambda: any(predicate(e) for e in self.account.reg_events[seen:]), timeout)
        if not ok:
            return None
        return next(e for e in self.account.reg_events[seen:] if predicate(e))

    def shutdown(self) -> None:
        try:
            self.account.shutdown()
        except Exception:
            pass


def make_phone(lib: PjLibrary, *, transport: str, user: str, host: str, port: int,
               password: str | None = None, register: bool = False,
               reg_timeout: int = 300, realm: str = "*") -> Phone:
    """A phone whose account uses `transport` ("UDP", "TCP" or "TLS") toward host:port."""
    param = "" if transport == "UDP" else f";transport={transport.lower()}"
    scheme = "sip"
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{user}@{host}"
    acfg.sipConfig.transportId = lib.transports[transport]
    if register:
        acfg.regConfig.registrarUri = f"{scheme}:{host}:{port}{param}"
        acfg.regConfig.timeoutSec = reg_timeout
        acfg.regConfig.retryIntervalSec = 0
    else:
        acfg.regConfig.registrarUri = ""
    acfg.regConfig.registerOnAdd = register
    if password is not None:
        cred = pj.AuthCredInfo("digest", realm, user, 0, password)
        acfg.sipConfig.authCreds.append(cred)
    acfg.natConfig.sipOutboundUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acc = PjAccount()
    acc.create(acfg)
    return Phone(lib, acc, transport, f"sip:{user}@{host}")
