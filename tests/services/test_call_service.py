"""The call service built with in-memory fakes: a real SIP runtime without sockets, the
example dialplan, an empty location service, and a list for the call records."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devices.digest import DigestAuthenticator
from devices.guard import AuthFailureGuard
from devices.location import LocationService
from dialplan import Plan, PlanHolder, load_plan_data
from dialplan.yamlsource import load_yaml_file
from rating.cdr import CallRecord
from switch.b2bua.legs import LocalAddress
from switch.calls import CallService
from switch.runtime import SipRuntime
from switch.services.applications import PromptLibrary
from switch.services.plan import PlanAccounts
from switch.services.ports import CallTimers
from switch.sip import Request, Response, make_response, parse_message
from switch.transaction import Peer
from tests.support.server import EXAMPLE_CONFIG

TRUNK = Peer("UDP", "127.0.0.1", 5090)  # the example plan's carrier: trusted, no digest


class Records:
    def __init__(self) -> None:
        self.opened: list[CallRecord] = []
        self.closed: list[CallRecord] = []

    def open(self, record: CallRecord) -> None:
        self.opened.append(record)

    def close(self, record: CallRecord) -> None:
        self.closed.append(record)


class Registrar:
    def __init__(self) -> None:
        self.location = LocationService()
        self.digest: DigestAuthenticator | None = None
        self.guard: AuthFailureGuard | None = None


class Plans:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan


def invite(dialed: str, call_id: str) -> bytes:
    return (
        f"INVITE sip:{dialed}@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-{call_id}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:+33612345678@127.0.0.1>;tag=carrier\r\n"
        f"To: <sip:{dialed}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:+33612345678@127.0.0.1:5090>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def service(tmp_path: Path) -> tuple[CallService, SipRuntime, list[Response], Records]:
    plan = load_plan_data(load_yaml_file(EXAMPLE_CONFIG))
    runtime = SipRuntime()
    sent: list[Response] = []

    def capture(data: bytes, dest: Peer, key: object = None) -> None:
        msg = parse_message(data)
        if isinstance(msg, Response):
            sent.append(msg)

    runtime._send = capture  # type: ignore[method-assign]
    records, registrar = Records(), Registrar()
    calls = CallService(
        runtime, LocalAddress("127.0.0.1", 5060, 5061), plan=Plans(plan),
        accounts=PlanAccounts(PlanHolder(plan)), authority=registrar, locations=registrar,
        records=records, media=None, emergency=None, timers=CallTimers(),
        recordings=tmp_path, prompts=PromptLibrary(None))
    await calls.start()
    return calls, runtime, sent, records


async def test_a_not_yet_built_destination_is_refused_with_its_reason_and_recorded(
        tmp_path: Path) -> None:
    calls, runtime, sent, records = await service(tmp_path)
    runtime.deliver(invite("+33562070402", "q1"), TRUNK)  # the support queue's number
    final = [r for r in sent if r.status >= 200]
    assert [r.status for r in final] == [501]
    # this call service has no queue service (nor voicemail): the queue, or its voicemail
    # when the office is closed, says so
    assert final[0].reason in ("Queue Not Available Yet", "Voicemail Not Available Yet")
    assert (final[0].headers.get("Warning") or "").startswith('399 wte "')
    assert [r.call_id for r in records.opened] == ["q1"]
    rec = records.closed[0]
    assert (rec.call_id, rec.status, rec.disposition, rec.hangup_side) == \
        ("q1", 501, "refused", "switch")
    assert rec.caller == "+33612345678" and rec.end is not None and rec.answer is None
    assert len(calls) == 0


async def test_nobody_registered_answers_480_and_is_recorded(tmp_path: Path) -> None:
    _calls, runtime, sent, records = await service(tmp_path)
    runtime.deliver(invite("+33562070411", "u1"), TRUNK)  # 501411, no device registered
    assert [r.status for r in sent if r.status >= 200] == [480]
    rec = records.closed[0]
    assert (rec.status, rec.disposition, rec.decision, rec.callee) == \
        (480, "refused", "user", "501411")


async def test_info_outside_a_call_is_481(tmp_path: Path) -> None:
    _calls, runtime, sent, _records = await service(tmp_path)
    info = invite("501410", "i1").replace(b"INVITE sip", b"INFO sip").replace(
        b"1 INVITE", b"1 INFO").replace(b"To: <sip:501410@127.0.0.1>",
                                        b"To: <sip:501410@127.0.0.1>;tag=x")
    runtime.deliver(info, TRUNK)
    assert [r.status for r in sent] == [481]
    assert "INFO" in runtime.allow


async def test_a_call_nobody_takes_can_be_answered_by_an_application(tmp_path: Path) -> None:
    """The exhausted seam end to end: 501411 is busy, the policy answers with the echo."""
    import time

    from devices.location import Binding
    from switch.b2bua.decisions import AnswerWith
    from tests.services.test_runner import FakeMedia

    class Media:
        def __init__(self) -> None:
            self.endpoint = FakeMedia()

        async def anchor(self, offer_body: bytes) -> None:
            return None

        async def application_endpoint(self, offer_body: bytes) -> tuple[FakeMedia, bytes]:
            return self.endpoint, b"v=0 switch-answer"

    plan = load_plan_data(load_yaml_file(EXAMPLE_CONFIG))
    runtime = SipRuntime()
    out: list[tuple[bytes, Peer]] = []
    runtime._send = lambda data, dest, key=None: out.append((data, dest))  # type: ignore[method-assign]
    records, registrar, media = Records(), Registrar(), Media()
    phone = Peer("UDP", "127.0.0.1", 40001)
    registrar.location.load([Binding(
        "acme:501411", "sip:501411@127.0.0.1:40001", time.time() + 3600, 1.0,
        "reg", 1, None, None, "udp", phone.host, phone.port, None, "test", time.time())],
        drop_connections=False)
    calls = CallService(
        runtime, LocalAddress("127.0.0.1", 5060, 5061), plan=Plans(plan),
        accounts=PlanAccounts(PlanHolder(plan)), authority=registrar, locations=registrar,
        records=records, media=media, emergency=None, timers=CallTimers(),
        recordings=tmp_path, prompts=PromptLibrary(None),
        exhausted_policy=lambda ex: AnswerWith("echo_test"))
    await calls.start()
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    runtime.deliver(invite("+33562070411", "d1").replace(
        b"Content-Length: 0\r\n\r\n",
        b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s" % (len(sdp), sdp)),
        TRUNK)
    for _ in range(5):  # the anchoring step is asynchronous
        await asyncio.sleep(0)
    leg = next(parse_message(d) for d, dest in out if dest == phone)
    assert isinstance(leg, Request) and leg.method == "INVITE"
    busy = make_response(leg, 486, to_tag="busy")
    runtime.deliver(busy.to_bytes(), phone)
    for _ in range(10):
        await asyncio.sleep(0)
    finals = [m for d, dest in out if dest == TRUNK
              for m in [parse_message(d)] if isinstance(m, Response) and m.status >= 200]
    assert [(r.status, r.body) for r in finals] == [(200, b"v=0 switch-answer")]
    assert media.endpoint.calls == ["echo True"]  # the application runs on the caller
    assert records.opened[0].callee == "501411"


async def test_ended_calls_linger_then_are_forgotten_by_one_timer(tmp_path: Path) -> None:
    """An ended call is kept LINGER_SECONDS to absorb retransmissions; the ended calls
    wait in one queue behind one loop timer, not a timer each."""
    from switch.linger import LINGER_SECONDS, Lingering

    now = [100.0]
    forgotten: list[str] = []
    lingering: Lingering[str] = Lingering(asyncio.get_running_loop, lambda: now[0],
                                          forgotten.append)
    lingering.add("first")
    timer = lingering.timer
    now[0] += 0.5
    lingering.add("second")
    assert timer is not None and lingering.timer is timer  # one timer for both
    now[0] = 100.0 + LINGER_SECONDS
    lingering.sweep()
    assert forgotten == ["first"] and lingering.timer is not None
    assert lingering.timer.when() == now[0] + 1.0  # the next sweep, a second on at least
    now[0] += 1.0
    lingering.sweep()
    assert forgotten == ["first", "second"] and lingering.timer is None and not lingering


async def test_an_ended_call_waits_in_the_call_services_lingering_queue(tmp_path: Path) -> None:
    calls, _runtime, _sent, _records = await service(tmp_path)
    assert len(calls.lingering) == 0 and calls.lingering._forget == calls._forget
