"""The parsed scenario model: immutable, typed, each step knowing where it was written.

A scenario file::

    name: alice calls bob, bob is busy
    phones:
      alice: {account: "501410", password: demo-501410, transport: udp, kind: desk}
      bob:   {account: "501411", password: demo-501411, transport: tcp, kind: softphone}
      carrier: {kind: carrier}  # the switch's carrier trunk (see Phone.address)
    steps:                      # in order; each step is `phone: action`, or `wait: seconds`
      - alice: register
      - bob: register
      - alice: {dial: "501411"}
      - bob: {expect_ringing: {timeout: 5}}
      - bob: {reject: 486}
      - alice: {expect_status: 486}

Instead of the top-level `steps`, each phone may carry its own `steps:` list; the phones'
lists then run side by side. Every waiting step takes `timeout` (seconds, default 5).

`settings: {dnd: true}` (or forward_always, forward_busy, forward_no_answer,
forward_no_answer_seconds, forward_unreachable, clir, reject_anonymous, call_waiting) has
the phone's user change its call settings through the switch's admin API (logged in with
its SIP credentials on the HTTP port, the SIP port + 4), as the web portal does.

`transfer: "412"` (or `{to: "412", method: blind}`) makes a phone in a call ask for a blind
transfer (RFC 3515 REFER); the step passes when the final NOTIFY reports a 2xx, which the
switch sends once the target has answered: give the target its own `steps:` list (see
tests/scenarios/blind_transfer.yaml). `transfer: {method: attended}` (pjsua2 engine) hands the
phone's previous call to the party of its last one (REFER with Replaces, RFC 3891): answered
is attended, still ringing is semi-attended (tests/scenarios/pjsua2_media/attended_transfer.yaml).

A carrier phone (`kind: carrier`) without `address` is the switch's carrier trunk: the
runner moves the trunk of a switch it starts to a free port and listens there; against
`--target` it listens on the example's 127.0.0.1:5090.

A browser phone (`kind: webrtc`, issue 23) is played by aiortc whatever the engine
(`scenarios.webrtc_engine`): SIP over WebSocket (the target's port + 2) with a short-lived
password it fetches from the HTTP API (port + 4) with its `password`, WebRTC media. It
sends digits as SIP INFO only: `send_dtmf: {digits: "1", method: info}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# The example configuration's carrier trunk: where a carrier phone listens when the runner
# plays against an external switch (`--target`) and the scenario gives no `address`.
EXAMPLE_CARRIER = "127.0.0.1:5090"


class StepKind(Enum):
    REGISTER = "register"
    UNREGISTER = "unregister"
    DIAL = "dial"
    EXPECT_RINGING = "expect_ringing"
    ANSWER = "answer"
    REJECT = "reject"
    WAIT = "wait"
    HANGUP = "hangup"
    EXPECT_STATUS = "expect_status"
    EXPECT_STATE = "expect_state"
    EXPECT_HEADER = "expect_header"
    EXPECT_RECORD = "expect_record"
    SEND_DTMF = "send_dtmf"
    PLAY_TONE = "play_tone"
    PLAY_WAV = "play_wav"
    EXPECT_TONE = "expect_tone"
    EXPECT_SILENCE = "expect_silence"
    EXPECT_DTMF = "expect_dtmf"
    HOLD = "hold"
    RESUME = "resume"
    TRANSFER = "transfer"
    SUBSCRIBE = "subscribe"  # RFC 6665: watch a user's dialog/presence/message-summary
    EXPECT_NOTIFY = "expect_notify"  # a NOTIFY of that event whose body matches
    SETTINGS = "settings"  # the phone's user changes its call settings through the API


class PhoneKind(Enum):
    DESK = "desk"
    DECT = "dect"
    SOFTPHONE = "softphone"
    CARRIER = "carrier"
    WEBRTC = "webrtc"  # a browser: SIP over WebSocket, WebRTC media (scenarios.webrtc_engine)


class CallState(Enum):
    """What a scenario can expect of a phone's current call."""

    IDLE = "idle"
    CALLING = "calling"  # INVITE sent, no provisional response yet
    INCOMING = "incoming"  # INVITE received, not answered yet
    RINGING = "ringing"  # 180/183 received (caller) or sent (callee)
    CONFIRMED = "confirmed"
    HELD = "held"
    DISCONNECTED = "disconnected"


class Match(Enum):
    EQUALS = "equals"
    CONTAINS = "contains"
    MATCHES = "matches"  # Python regular expression, searched
    ABSENT = "absent"


DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Where:
    """The place of a step in its file, for error messages."""

    file: str
    line: int
    index: int  # 1-based position in its list

    def __str__(self) -> str:
        return f"{self.file}:{self.line} (step {self.index})"


@dataclass(frozen=True, slots=True)
class Expectation:
    """A value test: `match` of `value` (regex, substring or exact), or absence."""

    match: Match
    value: str = ""

    def test(self, actual: str | None) -> bool:
        import re

        if self.match is Match.ABSENT:
            return actual is None
        if actual is None:
            return False
        if self.match is Match.EQUALS:
            return actual.strip() == self.value
        if self.match is Match.CONTAINS:
            return self.value in actual
        return re.search(self.value, actual) is not None

    def __str__(self) -> str:
        return "absent" if self.match is Match.ABSENT else f"{self.match.value} {self.value!r}"


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    phone: str | None  # None for `wait` at the top level
    where: Where
    timeout: float = DEFAULT_TIMEOUT
    target: str = ""  # dial: what is dialed; transfer: where to
    status: int = 0  # reject, expect_status, register (expected)
    seconds: float = 0.0  # wait; tone/silence/wav durations
    state: CallState | None = None
    header: str = ""  # expect_header: header name, or "Request-URI"
    on: str = ""  # expect_header: "invite", "response" or "" (the latest of both)
    expect: Expectation | None = None
    field_name: str = ""  # expect_record
    digits: str = ""  # send_dtmf, expect_dtmf
    method: str = ""  # dtmf: "rfc4733" or "inband"; transfer: "blind" or "attended"
    frequency: float = 0.0  # play_tone, expect_tone
    path: str = ""  # play_wav
    headers: tuple[tuple[str, str], ...] = ()  # dial: extra headers (e.g. a From to present)
    from_user: str = ""  # dial: the user part of From to present
    body: str = ""  # settings: the JSON body of PUT /api/v1/me/settings

    def describe(self) -> str:
        who = f"{self.phone}: " if self.phone else ""
        return f"{who}{self.kind.value}{self._args()}"

    def _args(self) -> str:
        parts: list[str] = []
        if self.target:
            parts.append(self.target)
        if self.status:
            parts.append(str(self.status))
        if self.state is not None:
            parts.append(self.state.value)
        if self.header:
            parts.append(f"{self.header} {self.expect}")
        if self.field_name:
            parts.append(f"{self.field_name} {self.expect}")
        if self.digits:
            parts.append(self.digits)
        if self.frequency:
            parts.append(f"{self.frequency:g} Hz")
        if self.kind is StepKind.WAIT:
            parts.append(f"{self.seconds:g} s")
        if self.body:
            parts.append(self.body)
        return f" {' '.join(parts)}" if parts else ""


@dataclass(frozen=True, slots=True)
class Phone:
    name: str
    kind: PhoneKind
    account: str = ""  # user part; for a carrier its number to present (From)
    password: str = ""
    realm: str = "*"
    transport: str = "UDP"
    # carrier: "host:port" it listens on. "" (the usual) means the switch's carrier trunk:
    # when the runner starts the switch, a free port it writes into the switch's trunk;
    # with --target, EXAMPLE_CARRIER or the runner's `carrier` option. An explicit
    # EXAMPLE_CARRIER also stands for the switch's trunk (files written before it moved).
    address: str = ""
    steps: tuple[Step, ...] = ()

    @property
    def registers(self) -> bool:
        return self.kind is not PhoneKind.CARRIER


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    file: str
    phones: tuple[Phone, ...]
    steps: tuple[Step, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    def phone(self, name: str) -> Phone:
        for p in self.phones:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def resources(self) -> frozenset[str]:
        """What two scenarios running at once must not share: accounts and carrier addresses."""
        out: set[str] = set()
        for p in self.phones:
            if p.kind is PhoneKind.CARRIER:
                # "" and the example address both mean the switch's trunk: one resource
                out.add(f"addr:{'' if p.address == EXAMPLE_CARRIER else p.address}")
            else:
                out.add(f"acct:{p.account}")
        return frozenset(out)

    @property
    def per_phone(self) -> bool:
        return not self.steps and any(p.steps for p in self.phones)
