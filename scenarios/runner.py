"""Playing scenarios: each step against its phone, with bounded waits and clear failures.

Scenarios that share no phone (account, or carrier address) run at the same time; a lock
per account or address keeps the others apart. A failed step stops its scenario; the
failure names the step (file, line), what was expected, what happened, and shows the SIP
messages of that phone around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace
from typing import TextIO

from switch.sip import Request, Response, parse_message

from .capabilities import engine_issues
from .engine import MEDIA_STEPS, Engine, NotSupported, PhoneDriver, Pump, StepFailed
from .model import EXAMPLE_CARRIER, CallState, Phone, PhoneKind, Scenario, Step, StepKind
from .records import RecordSource, record_field

REGISTER_EXPIRES = 300


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    ok: bool
    seconds: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    file: str
    engine: str
    passed: bool
    seconds: float
    steps: tuple[StepResult, ...] = ()
    failure: str = ""  # the whole message: step, expected, got, SIP log

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)


@dataclass
class RunContext:
    target: tuple[str, int]
    engine: Engine
    carrier_engine: Engine  # carriers are always played by the own engine
    pump: Pump
    records: RecordSource | None = None
    concurrency: int = 50
    # "host:port" of the switch's carrier trunk: where carrier phones without an address
    # (or with the example's) listen; a switch the runner starts gets a free port here
    carrier: str = EXAMPLE_CARRIER

    def resolve(self, spec: Phone) -> Phone:
        """A carrier phone with its listening address filled in (see Phone.address)."""
        if spec.kind is PhoneKind.CARRIER and spec.address in ("", EXAMPLE_CARRIER):
            return replace(spec, address=self.carrier)
        return spec


class _Run:
    def __init__(self, scenario: Scenario, ctx: RunContext) -> None:
        self.sc = scenario
        self.ctx = ctx
        self.phones: dict[str, PhoneDriver] = {}
        self.results: list[StepResult] = []

    async def play(self) -> ScenarioResult:
        t0 = time.monotonic()
        failure = ""
        refused = engine_issues(self.sc, self.ctx.engine.name)
        if refused:  # say so before any phone registers or calls
            failure = "\n".join(str(i) for i in refused)
            return ScenarioResult(self.sc.name, self.sc.file, self.ctx.engine.name, False,
                                  time.monotonic() - t0, (), failure)
        try:
            for spec in map(self.ctx.resolve, self.sc.phones):
                eng = self._engine_for(spec)
                drv = eng.phone(spec, self.ctx.target)
                self.phones[spec.name] = drv
                await drv.start()
            if self.sc.per_phone:
                await asyncio.gather(*(self._steps(p.steps) for p in self.sc.phones if p.steps))
            else:
                await self._steps(self.sc.steps)
        except _Failed as exc:
            failure = str(exc)
        except OSError as exc:
            failure = f"{self.sc.file}: cannot start the phones: {exc}"
        finally:
            for drv in self.phones.values():
                with contextlib.suppress(Exception):
                    await drv.stop()
        return ScenarioResult(self.sc.name, self.sc.file, self.ctx.engine.name, not failure,
                              time.monotonic() - t0, tuple(self.results), failure)

    def _engine_for(self, spec: Phone) -> Engine:
        if spec.kind is PhoneKind.CARRIER:
            return self.ctx.carrier_engine
        if spec.kind is PhoneKind.WEBRTC:  # issue 23: a browser, whatever --engine says
            from .webrtc_engine import WebRtcEngine  # aiortc is loaded only when needed

            return WebRtcEngine()
        return self.ctx.engine

    async def _steps(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            t0 = time.monotonic()
            try:
                await self._do(step)
            except (StepFailed, NotSupported) as exc:
                msg = str(exc)
                self.results.append(StepResult(step, False, time.monotonic() - t0, msg))
                log = ""
                if isinstance(exc, StepFailed) and step.phone in self.phones:
                    log = f"\nSIP messages of {step.phone}:\n{self.phones[step.phone].log.tail()}"
                raise _Failed(f"{step.where}: step `{step.describe()}` failed: {msg}{log}"
                              ) from None
            self.results.append(StepResult(step, True, time.monotonic() - t0))

    async def _until(self, cond: object, step: Step) -> bool:
        assert callable(cond)
        return await self.ctx.pump.until(cond, step.timeout)

    async def _do(self, step: Step) -> None:
        kind = step.kind
        if kind is StepKind.WAIT:
            await self.ctx.pump.sleep(step.seconds)
            return
        assert step.phone is not None
        ph = self.phones[step.phone]
        if kind in (StepKind.REGISTER, StepKind.UNREGISTER):
            if ph.spec.kind is PhoneKind.CARRIER:
                raise StepFailed("a carrier does not register")
            before = len(ph.reg_results)
            ph.register(REGISTER_EXPIRES if kind is StepKind.REGISTER else 0)
            if not await self._until(lambda: len(ph.reg_results) > before, step):
                raise StepFailed(f"no final response to REGISTER within {step.timeout:g} s")
            got = ph.reg_results[-1]
            want_ok = kind is StepKind.UNREGISTER
            if (want_ok and not 200 <= got < 300) or (not want_ok and got != step.status):
                raise StepFailed(f"expected REGISTER status {'2xx' if want_ok else step.status},"
                                 f" got {got}")
        elif kind is StepKind.DIAL:
            ph.dial(step.target, step.from_user, step.headers)
        elif kind is StepKind.EXPECT_RINGING:
            if not await self._until(lambda: ph.current is not None
                                     and CallState.RINGING in ph.current.states, step):
                raise StepFailed(f"expected ringing within {step.timeout:g} s, {self._call(ph)}")
        elif kind in (StepKind.ANSWER, StepKind.REJECT):
            if not await self._until(lambda: ph.current is not None and not ph.current.outgoing
                                     and ph.current.state in (CallState.INCOMING,
                                                              CallState.RINGING), step):
                raise StepFailed(f"expected an incoming call within {step.timeout:g} s, "
                                 f"{self._call(ph)}")
            if kind is StepKind.ANSWER:
                ph.answer()
            else:
                ph.reject(step.status)
        elif kind is StepKind.HANGUP:
            if ph.current is None:
                raise StepFailed("the phone has no call to hang up")
            ph.hangup()
            if not await self._until(lambda: ph.current is not None
                                     and ph.current.state is CallState.DISCONNECTED, step):
                raise StepFailed(f"the call did not end within {step.timeout:g} s, "
                                 f"{self._call(ph)}")
        elif kind is StepKind.EXPECT_STATUS:
            await self._expect_status(ph, step)
        elif kind is StepKind.EXPECT_STATE:
            want = step.state
            if not await self._until(lambda: (ph.current.state if ph.current else
                                              CallState.IDLE) is want, step):
                raise StepFailed(f"expected state {want.value if want else '?'} within "
                                 f"{step.timeout:g} s, {self._call(ph)}")
        elif kind is StepKind.EXPECT_HEADER:
            await self._expect_header(ph, step)
        elif kind is StepKind.EXPECT_RECORD:
            await self._expect_record(ph, step)
        elif kind in (StepKind.HOLD, StepKind.RESUME):
            ph.hold(kind is StepKind.HOLD)
            want_state = CallState.HELD if kind is StepKind.HOLD else CallState.CONFIRMED
            if not await self._until(lambda: ph.current is not None
                                     and ph.current.state is want_state, step):
                raise StepFailed(f"expected state {want_state.value}, {self._call(ph)}")
        elif kind is StepKind.TRANSFER:
            ph.transfer(step.target, step.method)
            if not await self._until(lambda: ph.transfer_status() is not None, step):
                raise StepFailed(f"no final transfer status within {step.timeout:g} s")
            xfer = ph.transfer_status()
            if xfer is None or not 200 <= xfer < 300:
                raise StepFailed(f"the transfer failed with status {xfer}")
        elif kind is StepKind.SUBSCRIBE:
            before = len(ph.sub_results)
            ph.subscribe(step.target, step.method)
            if not await self._until(lambda: len(ph.sub_results) > before, step):
                raise StepFailed(f"no final response to SUBSCRIBE within {step.timeout:g} s")
            if ph.sub_results[-1] != step.status:
                raise StepFailed(f"expected SUBSCRIBE status {step.status}, "
                                 f"got {ph.sub_results[-1]}")
        elif kind is StepKind.EXPECT_NOTIFY:
            await self._expect_notify(ph, step)
        elif kind is StepKind.SETTINGS:
            if ph.spec.kind is PhoneKind.CARRIER:
                raise StepFailed("a carrier has no settings")
            from .api_steps import change_settings

            await change_settings(self.ctx.target[0], self.ctx.target[1], ph.spec.account,
                                  ph.spec.password, step.body, step.timeout)
        elif kind in MEDIA_STEPS:
            from .media_steps import media_step

            await media_step(ph, step, self.ctx.pump)

    async def _expect_notify(self, ph: PhoneDriver, step: Step) -> None:
        """A NOTIFY (of `event`, when given) after the last one matched, whose body passes
        the expectation: steps in order see the states in order."""
        expect = step.expect
        assert expect is not None

        def check() -> bool:
            for i in range(ph.notify_cursor, len(ph.notifies)):
                event, body = ph.notifies[i]
                if (not step.method or event == step.method) and expect.test(body):
                    ph.notify_cursor = i + 1
                    return True
            return False

        if not await self._until(check, step):
            seen = [e for e, _ in ph.notifies[ph.notify_cursor:]]
            raise StepFailed(f"no NOTIFY {step.method or ''} with a body {expect} within "
                             f"{step.timeout:g} s (unmatched since the last: {seen})")

    @staticmethod
    def _call(ph: PhoneDriver) -> str:
        c = ph.current
        if c is None:
            return "but the phone has no call"
        states = " -> ".join(s.value for s in c.states)
        final = f", final status {c.final_status}" if c.final_status is not None else ""
        return f"but the call went {states} (last status {c.last_status}{final})"

    async def _expect_status(self, ph: PhoneDriver, step: Step) -> None:
        if ph.current is None:
            got = ph.reg_results[-1] if ph.reg_results else None
            if got != step.status:
                raise StepFailed(f"expected status {step.status}, got {got} (no call; the "
                                 "last REGISTER)")
            return
        await self._until(lambda: ph.current is not None and ph.current.final_status is not None,
                          step)
        got = ph.current.final_status
        if got != step.status:
            what = "no final status" if got is None else f"status {got}"
            raise StepFailed(f"expected status {step.status} within {step.timeout:g} s, got "
                             f"{what}; {self._call(ph)}")

    async def _expect_header(self, ph: PhoneDriver, step: Step) -> None:
        assert step.expect is not None
        got: list[str | None] = [None]
        which: list[str] = [""]

        def check() -> bool:
            rec = ph.received
            on = step.on or rec.latest
            text = rec.invite if on == "invite" else rec.response
            which[0] = on or "message"
            if text is None:
                return False
            got[0] = header_value(text, step.header)
            return step.expect is not None and step.expect.test(got[0])

        if not await self._until(check, step):
            seen = "nothing received" if not which[0] else (
                f"{step.header}: {got[0]!r}" if got[0] is not None else f"no {step.header}")
            raise StepFailed(f"expected {step.header} {step.expect} on the last {which[0]} "
                             f"received; got {seen}")

    async def _expect_record(self, ph: PhoneDriver, step: Step) -> None:
        assert step.expect is not None
        reader = self.ctx.records
        if reader is None:
            raise StepFailed("call records are out of reach: with --target, give the "
                             "switch's API a token (--api-token)")
        call = ph.current
        if call is None:
            raise StepFailed("the phone has no call")
        value: list[str | None] = [None]
        found = [False]

        async def poll() -> bool:
            try:
                rec = await reader.find(call.call_id)
            except PermissionError as exc:
                raise StepFailed(str(exc)) from None
            if rec is None or rec.end is None:
                return False
            found[0] = True
            try:
                value[0] = record_field(rec, step.field_name)
            except KeyError:
                raise StepFailed(f"call records have no field {step.field_name!r}") from None
            return step.expect is not None and step.expect.test(value[0])

        end = time.monotonic() + step.timeout
        while not await poll():
            if time.monotonic() > end:
                got = f"{step.field_name}={value[0]!r}" if found[0] else \
                    f"no closed record for Call-ID {call.call_id}"
                raise StepFailed(f"expected call record {step.field_name} {step.expect}, "
                                 f"got {got}")
            await self.ctx.pump.sleep(0.05)


class _Failed(Exception):
    pass


def header_value(text: str, name: str) -> str | None:
    """A header of a raw message (all values joined with ", "), or the Request-URI/status."""
    try:
        msg: Request | Response = parse_message(text.encode("utf-8", "surrogateescape"))
    except Exception:
        return None
    low = name.lower()
    if low in ("request-uri", "ruri"):
        return str(msg.uri) if isinstance(msg, Request) else None
    if low == "status":
        return str(msg.status) if isinstance(msg, Response) else None
    values = msg.headers.get_raw(name)
    return ", ".join(values) if values else None


async def run_scenarios(scenarios: list[Scenario], ctx: RunContext, out: TextIO
                        ) -> list[ScenarioResult]:
    """Play every scenario; those with disjoint phones at once (up to `ctx.concurrency`)."""
    locks: dict[str, asyncio.Lock] = {}
    gate = asyncio.Semaphore(max(1, ctx.concurrency))
    results: list[ScenarioResult | None] = [None] * len(scenarios)

    async def one(i: int, sc: Scenario) -> None:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(gate)
            for key in sorted(sc.resources):  # one order for all: no deadlock
                await stack.enter_async_context(locks.setdefault(key, asyncio.Lock()))
            res = await _Run(sc, ctx).play()
        results[i] = res
        report(res, out)

    await asyncio.gather(*(one(i, sc) for i, sc in enumerate(scenarios)))
    return [r for r in results if r is not None]


def report(res: ScenarioResult, out: TextIO) -> None:
    verdict = "PASS" if res.passed else "FAIL"
    out.write(f"{verdict} {res.name} [{res.file}] ({res.engine}, {res.seconds:.2f} s)\n")
    for sr in res.steps:
        mark = "ok  " if sr.ok else "FAIL"
        out.write(f"  {mark} {sr.step.where.index:>3} {sr.step.describe()} "
                  f"({sr.seconds:.2f} s)\n")
    if res.failure:
        out.write("  " + res.failure.replace("\n", "\n  ") + "\n")
    out.flush()
