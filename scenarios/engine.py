"""What the runner needs from a phone, whatever engine drives it.

A driver does not wait: it starts an action and records what happens (call states, statuses,
the messages received). The runner waits on those records with `Pump.until`, which lets
every engine make progress in the one asyncio loop (pjsua2 is polled from it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .model import CallState, Phone, StepKind

MEDIA_STEPS = frozenset({StepKind.SEND_DTMF, StepKind.PLAY_TONE, StepKind.PLAY_WAV,
                         StepKind.EXPECT_TONE, StepKind.EXPECT_SILENCE, StepKind.EXPECT_DTMF})


class NotSupported(Exception):
    """This engine cannot perform this step (yet): the step fails, it never passes silently."""

    def __init__(self, engine: str, what: str) -> None:
        super().__init__(f"not supported by engine {engine}: {what}")


class StepFailed(Exception):
    """An expectation was not met, or an action could not be taken."""


@dataclass
class SipLog:
    """Every SIP message a phone sent or received, in order, with a relative timestamp."""

    phone: str
    entries: list[tuple[float, str, str]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def sent(self, text: str, peer: str) -> None:
        self.entries.append((time.monotonic() - self.t0, f"sent to {peer}", text))

    def received(self, text: str, peer: str) -> None:
        self.entries.append((time.monotonic() - self.t0, f"received from {peer}", text))

    def tail(self, count: int = 8, max_lines: int = 30) -> str:
        if not self.entries:
            return f"  ({self.phone}: no SIP messages)"
        out: list[str] = []
        for t, what, text in self.entries[-count:]:
            lines = text.replace("\r\n", "\n").split("\n")
            head = [ln for ln in lines if ln][:max_lines]
            out.append(f"  --- {self.phone} {what} at +{t:.3f}s")
            out.extend(f"  | {ln}" for ln in head)
        return "\n".join(out)


@dataclass
class CallView:
    """A call as the runner sees it; drivers update it."""

    call_id: str
    outgoing: bool
    states: list[CallState] = field(default_factory=list)
    final_status: int | None = None
    last_status: int = 0

    @property
    def state(self) -> CallState:
        return self.states[-1] if self.states else CallState.IDLE

    def set(self, state: CallState) -> None:
        if not self.states or self.states[-1] is not state:
            self.states.append(state)


@dataclass
class Received:
    """The raw text of the last INVITE and the last response a phone received."""

    invite: str | None = None
    response: str | None = None
    latest: str = ""  # "invite" or "response"

    def note(self, kind: str, text: str) -> None:
        if kind == "invite":
            self.invite = text
        else:
            self.response = text
        self.latest = kind


class PhoneDriver:
    """Base class of the phones of every engine. Unsupported actions raise NotSupported."""

    engine = "?"

    def __init__(self, spec: Phone) -> None:
        self.spec = spec
        self.log = SipLog(spec.name)
        self.calls: list[CallView] = []
        self.received = Received()
        self.reg_results: list[int] = []  # final statuses of REGISTER, in order
        self.sub_results: list[int] = []  # final statuses of SUBSCRIBE, in order
        self.notifies: list[tuple[str, str]] = []  # (Event, body) of NOTIFYs received
        self.notify_cursor = 0  # expect_notify looks at NOTIFYs after the last it matched

    @property
    def current(self) -> CallView | None:
        return self.calls[-1] if self.calls else None

    def unsupported(self, what: str) -> NotSupported:
        return NotSupported(self.engine, what)

    async def start(self) -> None:
        """Open transports (the carrier binds its address)."""

    async def stop(self) -> None:
        """Hang up what is left, unregister, close."""

    def register(self, expires: int) -> None:
        raise self.unsupported("register")

    def dial(self, target: str, from_user: str, headers: tuple[tuple[str, str], ...]) -> None:
        raise self.unsupported("dial")

    def answer(self) -> None:
        raise self.unsupported("answer")

    def reject(self, status: int) -> None:
        raise self.unsupported("reject")

    def hangup(self) -> None:
        raise self.unsupported("hangup")

    def hold(self, on: bool) -> None:
        raise self.unsupported("hold" if on else "resume")

    def transfer(self, target: str, method: str) -> None:
        raise self.unsupported(f"{method} transfer")

    def subscribe(self, target: str, event: str) -> None:
        raise self.unsupported("subscribe")

    def send_dtmf(self, digits: str, method: str) -> None:
        raise self.unsupported(f"send_dtmf ({method})")

    def play_tone(self, frequency: float, seconds: float) -> None:
        raise self.unsupported("play_tone")

    def play_wav(self, path: str) -> None:
        raise self.unsupported("play_wav")

    def dtmf_received(self) -> str:
        raise self.unsupported("expect_dtmf")

    def transfer_status(self) -> int | None:
        """The final status of the last transfer (NOTIFY sipfrag or REFER failure)."""
        raise self.unsupported("transfer")

    async def listen(self, seconds: float, pump: Pump) -> tuple[list[float], int]:
        """Record what the phone hears for `seconds`: (samples, sample rate)."""
        raise self.unsupported("expect_tone/expect_silence")


class Pump:
    """Waits that let every engine run: asyncio tasks, and the pollers (pjsua2) in between."""

    def __init__(self) -> None:
        self.pollers: list[Callable[[], None]] = []
        self.interval = 0.004

    async def idle(self) -> None:
        for poll in self.pollers:
            poll()
        await asyncio.sleep(self.interval)

    async def until(self, cond: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            if cond():
                return True
            if time.monotonic() >= end:
                return False
            await self.idle()

    async def sleep(self, seconds: float) -> None:
        await self.until(lambda: False, seconds)


class Engine:
    """Makes phones; one engine serves a whole run."""

    name = "?"

    def phone(self, spec: Phone, target: tuple[str, int]) -> PhoneDriver:
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the engine holds."""

