"""pjsua2 (PJSIP) phones for system tests: an independent SIP implementation.

PJSIP allows one library instance per process, so one `PjLibrary` serves the whole test
session. It runs without worker threads: tests poll it with `wait_until`, so every callback
runs in the test's own thread.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj

from scenarios.pj_engine import create_library, retire_account


class PjLibrary:
    """The pjsua2 endpoint with one UDP, one TCP and one TLS transport."""

    def __init__(self) -> None:
        lib = create_library(user_agent="pjsua2-test", log_level=2)
        self.ep = lib.ep
        self.transports: dict[str, int] = lib.transports

    def poll(self, ms: int = 10) -> None:
        self.ep.libHandleEvents(ms)

    def wait_until(self, cond: Callable[[], bool], timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            self.poll(10)
        return cond()

    def settle_calls(self, timeout: float = 40.0) -> bool:
        """Hang up every call of the library and poll until none is active. This pjsua2
        build holds 4 calls per process (its compiled limit; `maxCalls` above 4 is ignored):
        a call a failed test left behind (its BYE still retransmitted to a switch that is
        gone, up to 64*T1) would otherwise take a slot a later test needs, and its phones
        would answer the switch's INVITEs 486/480."""
        self.ep.hangupAllCalls()

        return self.wait_until(lambda: not self.active_calls(), timeout)

    def active_calls(self) -> list[str]:
        """The calls still holding one of the library's 4 slots, for a failure message."""
        active = []
        for call in ALL_CALLS:
            try:
                if call.isActive():
                    active.append(f"{call.sip_call_id} states={call.states}")
            except Exception:  # a call pjsua2 has already let go of
                continue
        return active

    def destroy(self) -> None:
        # Calls outlive the library in test locals; their C++ destructors would then assert in
        # PJSIP. Hand ownership to C++ (a leak at exit, harmless) before the library goes.
        for call in ALL_CALLS:
            call.thisown = False
        ALL_CALLS.clear()
        for buddy in ALL_BUDDIES:
            buddy.thisown = False
        ALL_BUDDIES.clear()
        self.ep.hangupAllCalls()
        self.ep.libDestroy()


@dataclass
class RequestResult:
    status: int | None = None
    reason: str = ""
    raw: str = ""


ALL_CALLS: list[PjCall] = []


class PjCall(pj.Call):  # type: ignore[misc]
    """A call with its state history, audio hooks and the last SIP message seen."""

    def __init__(self, account: PjAccount, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        ALL_CALLS.append(self)
        self.states: list[int] = []
        self.last_status = 0
        self.media_active = False
        self.incoming_msg = ""
        self.tone: Any = None
        self.recorder: Any = None
        self.record_path: str | None = None
        self.tone_freq: float | None = None
        self.sip_call_id = ""
        self.media_error = ""
        self.rx_requests: list[str] = []  # in-dialog requests received (re-INVITE, UPDATE)
        self.tx_ok: list[str] = []  # the 200 responses the phone sent (its dialog tag)

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.sip_call_id = info.callIdString
        self.states.append(info.state)
        self.last_status = info.lastStatusCode

    def onCallTsxState(self, prm: Any) -> None:
        """Keep each in-dialog request the phone received (e.g. a re-INVITE or UPDATE
        telling a new identity after a transfer)."""
        try:
            if prm.e.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            state = prm.e.body.tsxState
            if state.type == pj.PJSIP_EVENT_RX_MSG:
                msg = str(state.src.rdata.wholeMsg)
                if msg and not msg.startswith("SIP/2.0") and msg not in self.rx_requests:
                    self.rx_requests.append(msg)
            elif state.type == pj.PJSIP_EVENT_TX_MSG:
                msg = str(state.src.tdata.wholeMsg)
                if msg.startswith("SIP/2.0 200") and msg not in self.tx_ok:
                    self.tx_ok.append(msg)
        except Exception:  # an event without rdata/tdata (timeouts)
            pass

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.media_active = True
                aud = self.getAudioMedia(i)
                if self.tone_freq is not None and self.tone is None:
                    self.tone = pj.ToneGenerator()
                    self.tone.createToneGenerator(8000, 1)
                    tone = pj.ToneDesc()
                    tone.freq1 = int(self.tone_freq)
                    tone.freq2 = 0
                    tone.on_msec = 30000  # a C short in PJSIP; the tone loops
                    tone.off_msec = 0
                    tone.volume = 0
                    vec = pj.ToneDescVector()
                    vec.append(tone)
                    self.tone.play(vec, True)
                    self.tone.startTransmit(aud)
                elif self.tone is not None:
                    # a re-INVITE may give the call a new audio port: keep playing into it
                    self.tone.startTransmit(aud)
                if self.record_path is not None and self.recorder is None:
                    self.recorder = pj.AudioMediaRecorder()
                    self.recorder.createRecorder(self.record_path)
                    aud.startTransmit(self.recorder)

    @property
    def state(self) -> int:
        return self.states[-1] if self.states else pj.PJSIP_INV_STATE_NULL

    def stop_media(self) -> None:
        """Stop the tone and close the recording (the WAV header is written on destroy)."""
        self.record_path = None  # a later media update must not start a new recording
        self.tone_freq = None
        self.recorder = None
        self.tone = None
        gc.collect()


ALL_BUDDIES: list[PjBuddy] = []


class PjBuddy(pj.Buddy):  # type: ignore[misc]
    """A presence subscription (RFC 3856) of a phone to a user: pjsua2's buddy. `states`
    holds (online, status text, subscription state name) at each change."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[tuple[bool, str, str]] = []
        ALL_BUDDIES.append(self)

    def onBuddyState(self) -> None:
        info = self.getInfo()
        online = info.presStatus.status == pj.PJSUA_BUDDY_STATUS_ONLINE
        self.states.append((online, info.presStatus.statusText, info.subStateName))


class PjAccount(pj.Account):  # type: ignore[misc]
    """An account; registers when given a registrar, and can send out-of-dialog requests."""

    def __init__(self) -> None:
        super().__init__()
        self.reg_events: list[tuple[int, str, int]] = []
        self.request_results: list[RequestResult] = []
        self.incoming: list[PjCall] = []
        self.mwi: list[str] = []  # message-summary bodies the switch sent (voicemail lamp)
        self.answer_with: int | None = None  # auto-answer incoming calls with this status
        self.tone_freq: float | None = None
        self.record_path: str | None = None

    def onIncomingCall(self, prm: Any) -> None:
        call = PjCall(self, prm.callId)
        call.incoming_msg = prm.rdata.wholeMsg
        call.tone_freq = self.tone_freq
        call.record_path = self.record_path
        self.incoming.append(call)
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        if self.answer_with is not None:
            op = pj.CallOpParam()
            op.statusCode = self.answer_with
            call.answer(op)

    def onMwiInfo(self, prm: Any) -> None:
        """A message-summary NOTIFY (RFC 3842): its body, newest last."""
        try:
            self.mwi.append(str(prm.rdata.wholeMsg).split("\r\n\r\n", 1)[-1])
        except Exception:  # a NOTIFY without rdata: nothing to read
            self.mwi.append("")

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.reg_events.append((prm.code, prm.reason, prm.expiration))

    def onSendRequest(self, prm: pj.OnSendRequestParam) -> None:
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
                          timeout: float = 8.0, *, since: int | None = None
                          ) -> tuple[int, str, int] | None:
        """Wait for a registration event matching `predicate` among those after `since`
        (default: events from now on)."""
        seen = len(self.account.reg_events) if since is None else since
        ok = self.lib.wait_until(
            lambda: any(predicate(e) for e in self.account.reg_events[seen:]), timeout)
        if not ok:
            return None
        return next(e for e in self.account.reg_events[seen:] if predicate(e))

    def call(self, target: str, *, tone_freq: float | None = None,
             record_path: str | None = None, headers: dict[str, str] | None = None) -> PjCall:
        call = PjCall(self.account)
        call.tone_freq = tone_freq
        call.record_path = record_path
        prm = pj.CallOpParam(True)
        if headers:
            for name, value in headers.items():
                h = pj.SipHeader()
                h.hName = name
                h.hValue = value
                prm.txOption.headers.append(h)
        try:
            call.makeCall(target, prm)
        except pj.Error as exc:
            raise RuntimeError(f"makeCall failed: {exc.info()}") from None
        return call

    def watch(self, target: str) -> PjBuddy:
        """Subscribe to the presence of `target` (a SIP URI) as pjsua2 buddy."""
        cfg = pj.BuddyConfig()
        cfg.uri = target
        cfg.subscribe = True
        buddy = PjBuddy()
        buddy.create(self.account, cfg)
        return buddy

    def hangup_all(self) -> None:
        self.lib.ep.hangupAllCalls()
        self.lib.wait_until(lambda: False, 0.3)

    def shutdown(self) -> None:
        try:
            retire_account(self.account)
        except Exception:
            pass


def make_phone(lib: PjLibrary, *, transport: str, user: str, host: str, port: int,
               password: str | None = None, register: bool = False,
               reg_timeout: int = 300, realm: str = "*", mwi: bool = False) -> Phone:
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
    # RTP on a random free range: several test processes may run pjsua2 at once
    acfg.mediaConfig.transportConfig.port = random.randrange(20000, 60000, 2)
    acfg.mediaConfig.transportConfig.portRange = 2000
    acfg.natConfig.sipOutboundUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.mwiConfig.enabled = mwi  # SUBSCRIBE to message-summary (RFC 3842)
    acc = PjAccount()
    acc.create(acfg)
    return Phone(lib, acc, transport, f"sip:{user}@{host}")


def carrier_port(lib: PjLibrary) -> int:
    """The local port of the library's carrier transport (the test switch's trunk)."""
    info = lib.ep.transportGetInfo(lib.transports["CARRIER"])
    return int(str(info.localName).rsplit(":", 1)[1])


def make_carrier_phone(lib: PjLibrary, number: str = "+33612345678") -> Phone:
    """A pjsua2 phone on the carrier transport, presenting `number`: a switch whose trunk
    trusts `carrier_port(lib)` takes its calls as calls from the public network."""
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{number}@127.0.0.1"
    acfg.sipConfig.transportId = lib.transports["CARRIER"]
    acfg.regConfig.registrarUri = ""
    acfg.regConfig.registerOnAdd = False
    acfg.mediaConfig.transportConfig.port = random.randrange(20000, 60000, 2)
    acfg.mediaConfig.transportConfig.portRange = 2000
    acfg.natConfig.sipOutboundUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acc = PjAccount()
    acc.create(acfg)
    return Phone(lib, acc, "UDP", f"sip:{number}@127.0.0.1")


def registered_phones(lib: PjLibrary, host: str, port: int,
                      users: Iterable[str]) -> Iterator[dict[str, Phone]]:
    """A module's phones over UDP, each registered with its demo password before the tests,
    their calls hung up and their accounts shut down after (a fixture's body)."""
    made = {u: make_phone(lib, transport="UDP", user=u, host=host, port=port,
                          password=f"demo-{u}", register=True) for u in users}
    for phone in made.values():
        assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    lib.ep.hangupAllCalls()
    lib.wait_until(lambda: False, 0.5)
    for phone in made.values():
        phone.shutdown()
