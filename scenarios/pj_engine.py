"""The pjsua2 engine: phones on PJSIP, an independent SIP implementation.

PJSIP allows one library per process and creates its transports at start, so this module
holds the only pjsua2 objects (typed `Any`: pjsua2 has no stubs). The library runs without
worker threads; the runner's `Pump` polls it from the asyncio loop, so every callback runs
in the loop's thread. Carriers are not played here: they need a socket on the trunk's
address, and the runner always gives them to the own engine.
"""

from __future__ import annotations

import gc
import os
import random
import tempfile
import time
import wave
from typing import Any

import pjsua2 as pj

from .engine import CallView, Engine, PhoneDriver, Pump, StepFailed
from .model import CallState, Phone

_STATES: dict[int, CallState] = {
    pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
    pj.PJSIP_INV_STATE_INCOMING: CallState.INCOMING,
    pj.PJSIP_INV_STATE_EARLY: CallState.RINGING,
    pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
}


# Accounts deleted but kept: see retire_account.
_RETIRED_ACCOUNTS: list[Any] = []


def retire_account(account: Any) -> None:
    """Delete a pjsua2 account for good. pjsua2's `Account.shutdown()` frees the account's
    slot but keeps its id; the object's destructor calls `shutdown()` again, and when a newer
    account has taken that slot by then, it is the newer account that gets deleted (its next
    call fails with PJ_EINVALIDOP, "account is not valid"). A failed test's traceback keeps
    its phones alive until a later test has reused their slots, so the destructor must never
    run: C++ keeps the object, and this list keeps its Python side."""
    try:
        account.shutdown()
    finally:
        account.thisown = False
        _RETIRED_ACCOUNTS.append(account)


def create_library(user_agent: str = "wte-scenario/pjsua2", log_level: int = 1) -> Any:
    """A pjsua2 endpoint with one UDP, TCP and TLS transport on loopback, no threads.

    Returns an object with `.ep` and `.transports` (name -> transport id); the test
    harness's PjLibrary is built on it, so a caller may pass that one instead."""

    class _Lib:
        def __init__(self) -> None:
            self.ep = pj.Endpoint()
            self.ep.libCreate()
            cfg = pj.EpConfig()
            cfg.uaConfig.threadCnt = 0
            cfg.uaConfig.mainThreadOnly = False
            cfg.uaConfig.userAgent = user_agent
            cfg.logConfig.level = log_level
            cfg.logConfig.consoleLevel = log_level
            cfg.medConfig.noVad = True
            # keep the (null) sound device open: pjsua closes it 1 s after it looks idle,
            # and a call that connected nothing to it then stops sending RTP
            cfg.medConfig.sndAutoCloseTime = -1
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
            # a second UDP socket for a phone playing the carrier: a switch trusts its
            # trunk by source address, so the carrier must not share the phones' socket
            tc = pj.TransportConfig()
            tc.port = 0
            tc.boundAddress = "127.0.0.1"
            self.transports["CARRIER"] = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
            self.ep.libStart()

    return _Lib()


CLOSE_WAIT_S = 35.0  # a BYE's transaction lives 64*T1 = 32 s at most


def _active(call: pj.Call) -> bool:
    try:
        return bool(call.isActive())
    except Exception:  # a call pjsua2 has already let go of
        return False


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, phone: PjPhone, account: Any, call_id: int = pj.PJSUA_INVALID_ID,
                 outgoing: bool = True) -> None:
        super().__init__(account, call_id)
        self.phone = phone
        self.view = CallView("", outgoing)
        self.dtmf = ""
        self.pending_hold: bool | None = None
        self.audio: Any = None
        self.players: list[Any] = []
        self.xfer_status: int | None = None

    def onCallState(self, prm: Any) -> None:
        self._note(prm.e)
        info = self.getInfo()
        self.view.call_id = info.callIdString
        self.view.last_status = int(info.lastStatusCode)
        state = _STATES.get(info.state)
        if state is CallState.CONFIRMED and self.view.final_status is None:
            self.view.final_status = 200
        if state is CallState.DISCONNECTED and self.view.final_status is None:
            self.view.final_status = int(info.lastStatusCode)
        if state is not None:
            self.view.set(state)

    def onCallTsxState(self, prm: Any) -> None:
        self._note(prm.e)

    def _note(self, event: Any) -> None:
        """Log a message carried by a transaction event (pjsua2 reports some twice)."""
        try:
            if event.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            ts = event.body.tsxState
            if ts.type == pj.PJSIP_EVENT_RX_MSG:
                text = str(ts.src.rdata.wholeMsg)
                if any(e[2] == text for e in self.phone.log.entries[-3:]):
                    return
                self.phone.log.received(text, str(ts.src.rdata.srcAddress))
                if text.startswith("SIP/2.0") and not text.startswith("SIP/2.0 100"):
                    self.phone.received.note("response", text)
                elif text.startswith(("INVITE", "UPDATE")):
                    # an UPDATE counts as the last INVITE: in a call it may bring a new
                    # identity (after a transfer) as a re-INVITE does
                    self.phone.received.note("invite", text)
            elif ts.type == pj.PJSIP_EVENT_TX_MSG:
                text = str(ts.src.tdata.wholeMsg)
                if not any(e[2] == text for e in self.phone.log.entries[-3:]):
                    self.phone.log.sent(text, "switch")
        except Exception:
            pass

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in (
                    pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_LOCAL_HOLD,
                    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                self.audio = self.getAudioMedia(i)
        if self.pending_hold is not None and prm is not None:
            self.view.set(CallState.HELD if self.pending_hold else CallState.CONFIRMED)
            self.pending_hold = None

    def onDtmfDigit(self, prm: Any) -> None:
        self.dtmf += str(prm.digit)

    def onCallTransferStatus(self, prm: Any) -> None:
        if prm.finalNotify or prm.statusCode >= 200:
            self.xfer_status = int(prm.statusCode)


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: PjPhone) -> None:
        super().__init__()
        self.phone = phone

    def onRegState(self, prm: Any) -> None:
        try:
            if prm.rdata.wholeMsg:
                self.phone.log.received(str(prm.rdata.wholeMsg), "switch")
                self.phone.received.note("response", str(prm.rdata.wholeMsg))
        except Exception:
            pass
        self.phone.reg_results.append(int(prm.code))

    def onIncomingCall(self, prm: Any) -> None:
        call = _Call(self.phone, self, prm.callId, outgoing=False)
        text = str(prm.rdata.wholeMsg)
        self.phone.log.received(text, str(prm.rdata.srcAddress))
        self.phone.received.note("invite", text)
        call.view.set(CallState.INCOMING)
        self.phone.pj_calls.append(call)
        self.phone.calls.append(call.view)
        op = pj.CallOpParam()
        op.statusCode = 180  # phones ring at once
        call.answer(op)


class PjPhone(PhoneDriver):
    engine = "pjsua2"

    def __init__(self, spec: Phone, target: tuple[str, int], lib: Any) -> None:
        super().__init__(spec)
        self.lib = lib
        self.host = target[0]
        self.port = target[1] + 1 if spec.transport == "TLS" else target[1]
        self.param = "" if spec.transport == "UDP" else f";transport={spec.transport.lower()}"
        self.pj_calls: list[_Call] = []
        self.xfer_call: _Call | None = None  # the call whose REFER the transfer step sent
        self.extra_accounts: dict[str, Any] = {}
        self.account: Any = None
        self.registered = False

    def _config(self, user: str, register: bool) -> Any:
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{self.host}"
        acfg.sipConfig.transportId = self.lib.transports[self.spec.transport]
        acfg.regConfig.registrarUri = f"sip:{self.host}:{self.port}{self.param}" if register else ""
        acfg.regConfig.registerOnAdd = False
        acfg.regConfig.timeoutSec = 300
        acfg.regConfig.retryIntervalSec = 0
        if self.spec.password:
            acfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", self.spec.realm, self.spec.account, 0,
                                self.spec.password))
        acfg.natConfig.sipOutboundUse = 0
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        # RTP on a random free range, never pjsua's default 4000: another pjsua2 process
        # (a test run beside this one) would collide there
        acfg.mediaConfig.transportConfig.port = random.randrange(20000, 60000, 2)
        acfg.mediaConfig.transportConfig.portRange = 2000
        return acfg

    async def start(self) -> None:
        self.account = _Account(self)
        self.account.create(self._config(self.spec.account, True))

    async def stop(self) -> None:
        for call in self.pj_calls:
            if call.view.state not in (CallState.DISCONNECTED, CallState.IDLE):
                try:
                    call.hangup(pj.CallOpParam(True))
                except Exception:
                    pass
        if self.registered:
            before = len(self.reg_results)
            self.register(0)
            for _ in range(200):
                if len(self.reg_results) > before:
                    break
                self.lib.ep.libHandleEvents(10)
        for acc in [self.account, *self.extra_accounts.values()]:
            try:
                retire_account(acc)
            except Exception:
                pass
        self.lib.ep.libHandleEvents(20)

    def register(self, expires: int) -> None:
        self.account.setRegistration(expires > 0)
        self.registered = expires > 0

    def dial(self, target: str, from_user: str, headers: tuple[tuple[str, str], ...]) -> None:
        account = self.account
        if from_user:  # a From of the user's choice: a second account, same credentials
            if from_user not in self.extra_accounts:
                extra = _Account(self)
                extra.create(self._config(from_user, False))
                self.extra_accounts[from_user] = extra
            account = self.extra_accounts[from_user]
        uri = target if target.startswith(("sip:", "sips:", "tel:")) else (
            f"sip:{target}@{self.host}:{self.port}{self.param}")
        call = _Call(self, account)
        prm = pj.CallOpParam(True)
        for name, value in headers:
            h = pj.SipHeader()
            h.hName = name
            h.hValue = value
            prm.txOption.headers.append(h)
        call.view.set(CallState.CALLING)
        self.pj_calls.append(call)
        self.calls.append(call.view)
        call.makeCall(uri, prm)
        call.view.call_id = call.getInfo().callIdString

    def _call(self) -> _Call:
        if not self.pj_calls:
            raise StepFailed("the phone has no call")
        return self.pj_calls[-1]

    def answer(self) -> None:
        op = pj.CallOpParam()
        op.statusCode = 200
        self._call().answer(op)

    def reject(self, status: int) -> None:
        op = pj.CallOpParam()
        op.statusCode = status
        self._call().answer(op)

    def hangup(self) -> None:
        self._call().hangup(pj.CallOpParam(True))

    def hold(self, on: bool) -> None:
        call = self._call()
        call.pending_hold = on
        prm = pj.CallOpParam(True)
        if on:
            call.setHold(prm)
        else:
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(prm)

    def transfer(self, target: str, method: str) -> None:
        if method == "attended":
            # the phone's previous call (usually held) goes to the party of its last one,
            # answered (attended) or still ringing (semi-attended): REFER with Replaces
            live = [c for c in self.pj_calls
                    if c.view.state not in (CallState.DISCONNECTED, CallState.IDLE)]
            if len(live) < 2:
                raise StepFailed("an attended transfer needs two calls")
            self.xfer_call = live[-2]
            self.xfer_call.xferReplaces(live[-1], pj.CallOpParam(True))
            return
        uri = target if target.startswith("sip:") else f"sip:{target}@{self.host}:{self.port}"
        self.xfer_call = self._call()
        self.xfer_call.xfer(uri, pj.CallOpParam(True))

    def transfer_status(self) -> int | None:
        return (self.xfer_call or self._call()).xfer_status

    def send_dtmf(self, digits: str, method: str) -> None:
        if method != "rfc4733":
            raise self.unsupported("in-band DTMF")
        self._call().dialDtmf(digits)

    def dtmf_received(self) -> str:
        return self._call().dtmf

    def _audio(self) -> Any:
        call = self._call()
        call.onCallMediaState(None)  # the port of now: a re-INVITE may have replaced it
        if call.audio is None:
            raise StepFailed("the call has no active audio")
        return call.audio

    def play_tone(self, frequency: float, seconds: float) -> None:
        aud = self._audio()
        gen = pj.ToneGenerator()
        gen.createToneGenerator(8000, 1)
        tone = pj.ToneDesc()
        tone.freq1 = int(frequency)
        tone.freq2 = 0
        tone.on_msec = min(30000, max(20, int(seconds * 1000)))  # a C short in PJSIP
        tone.off_msec = 0
        tone.volume = 0
        vec = pj.ToneDescVector()
        vec.append(tone)
        gen.play(vec, False)
        gen.startTransmit(aud)
        self._call().players.append(gen)

    def play_wav(self, path: str) -> None:
        if not os.path.exists(path):
            raise StepFailed(f"no such WAV file: {path}")
        player = pj.AudioMediaPlayer()
        player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(self._audio())
        self._call().players.append(player)

    async def listen(self, seconds: float, pump: Pump) -> tuple[list[float], int]:
        aud = self._audio()
        fd, path = tempfile.mkstemp(suffix=".wav", prefix="wte-listen-")
        os.close(fd)
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        aud.startTransmit(rec)
        await pump.sleep(seconds)
        aud.stopTransmit(rec)
        del rec
        gc.collect()  # PJSIP writes the WAV header when the recorder is destroyed
        try:
            with wave.open(path, "rb") as w:
                rate = w.getframerate()
                raw = w.readframes(w.getnframes())
        finally:
            os.unlink(path)
        import array

        samples = array.array("h", raw[: len(raw) // 2 * 2])
        return [float(x) for x in samples], rate


class PjEngine(Engine):
    name = "pjsua2"

    def __init__(self, pump: Pump, library: Any = None) -> None:
        self.owned = library is None
        self.lib = create_library() if library is None else library
        self.phones: list[PjPhone] = []  # kept alive: a collected pjsua2 object touches ids
        pump.pollers.append(self._poll)

    def _poll(self) -> None:
        self.lib.ep.libHandleEvents(0)

    def phone(self, spec: Phone, target: tuple[str, int]) -> PhoneDriver:
        phone = PjPhone(spec, target, self.lib)
        self.phones.append(phone)
        return phone

    async def close(self) -> None:
        """Drop every pjsua2 object while the library is alive, then destroy it if ours."""
        import gc

        self.lib.ep.hangupAllCalls()
        for _ in range(20):
            self.lib.ep.libHandleEvents(10)
        # the library holds 4 calls per process: a call whose BYE is still unanswered keeps
        # its slot after its Python object is gone, where nothing later can see it, and the
        # next user of the library finds its calls refused (PJ_ETOOMANY). Wait for the end
        # of every call (the BYE answered or timed out, 64*T1 at most) while they are known.
        calls = [c for phone in self.phones for c in phone.pj_calls]
        deadline = time.monotonic() + CLOSE_WAIT_S
        while time.monotonic() < deadline and any(_active(c) for c in calls):
            self.lib.ep.libHandleEvents(20)
        for phone in self.phones:
            phone.pj_calls.clear()
            phone.xfer_call = None  # a cycle (call -> phone -> call) would outlive the library
            phone.extra_accounts.clear()
            phone.account = None
        self.phones.clear()
        gc.collect()
        if self.owned:
            self.lib.ep.libDestroy()
