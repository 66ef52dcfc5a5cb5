"""Issue 24, dialplan part: `plan explain` reads now in the site's zone, `plan check` warns
about short extensions that read as another site's numbers, ring times are settings."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from dialplan import CallContext, ConfigError, RoutingDecision, load_plan, route
from dialplan.cli import plan_check, plan_explain
from switch.b2bua.call import Call
from switch.b2bua.effects import Disposition, Ended, RespondCaller
from switch.b2bua.legs import LocalAddress
from switch.call_targets import hunt_step_for, ring_timeout_for
from switch.sip import Request, parse_message
from switch.transaction import Peer

from .conftest import EXAMPLE, ROOT

# Wednesday 2 December 2026, 07:10 UTC = 08:10 in Paris: the `office` schedule of the sales
# hunt group opens at 08:30, so the call goes to the closed route (voicemail of 501410).
# Read as a Tokyo wall clock (16:10) or a UTC one (07:10) the answers would differ.
_FIXED_CLOCK = """
import datetime as d, sys
import dialplan.cli as cli

class Fixed(d.datetime):
    @classmethod
    def now(cls, tz=None):
        t = d.datetime(2026, 12, 2, 7, 10, tzinfo=d.UTC)
        return t.astimezone(tz) if tz is not None else t.astimezone().replace(tzinfo=None)

cli.datetime = Fixed  # the system clock, as each host would read it
sys.exit(cli.plan_explain(sys.argv[1], "trunk:carrier", "+33562070401", None, sys.stdout))
"""


def _explain_on_host(tz: str) -> str:
    env = {**os.environ, "TZ": tz}
    done = subprocess.run([sys.executable, "-c", _FIXED_CLOCK, str(EXAMPLE)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plan_explain_without_at_uses_now_in_the_site_zone_whatever_the_host_zone() -> None:
    utc, tokyo = _explain_on_host("UTC"), _explain_on_host("Asia/Tokyo")
    assert utc == tokyo
    assert "decision: VOICEMAIL 501410" in utc  # closed at 08:10 Paris time
    assert "at: 2026-12-02T08:10+01:00 Europe/Paris (site 01)" in utc
    assert "schedule office: closed wed 08:10" in utc


def test_plan_explain_takes_an_injected_instant_and_refuses_a_naive_one() -> None:
    out = io.StringIO()
    now = datetime.fromisoformat("2026-12-02T09:10+00:00")  # 10:10 in Paris: open
    assert plan_explain(str(EXAMPLE), "trunk:carrier", "+33562070401", None, out, now=now) == 0
    assert "decision: HUNT_GROUP 501401 Ventes" in out.getvalue()
    assert "at: 2026-12-02T10:10+01:00 Europe/Paris (site 01)" in out.getvalue()
    with pytest.raises(ValueError, match="time zone"):
        plan_explain(str(EXAMPLE), "501410", "501401", None, io.StringIO(),
                     now=datetime(2026, 12, 2, 9, 10))


def test_plan_explain_at_without_zone_is_the_site_local_time() -> None:
    out = io.StringIO()
    assert plan_explain(str(EXAMPLE), "trunk:carrier", "+33562070401",
                        datetime(2026, 12, 2, 8, 10), out) == 0
    text = out.getvalue()
    assert "decision: VOICEMAIL 501410" in text
    assert "at: 2026-12-02T08:10 Europe/Paris local time (site 01)" in text


def _variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = EXAMPLE.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_plan_check_warns_when_a_short_extension_reads_as_another_site(tmp_path: Path) -> None:
    # prefix 5, site 02: extension 502 of site 01 is also the start of 502411, 502412...
    path = _variant(tmp_path, ('extension: "450"', 'extension: "502"'))
    out = io.StringIO()
    assert plan_check([str(path)], out) == 0
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1)
                if 'extension: "502"' in ln)
    warnings = [ln for ln in out.getvalue().splitlines() if "warning:" in ln]
    assert warnings == [
        f"{path}:{line}: customers[0].sites[0].users[4].extension: warning: short extension "
        "502 of site 01 overlaps the full numbers of site 02 (502...): dialing 502 is ambiguous"]
    assert out.getvalue().endswith(", 1 warning(s)\n")
    clean = io.StringIO()
    assert plan_check([str(EXAMPLE)], clean) == 0
    assert "warning" not in clean.getvalue()


def test_ring_times_load_from_site_user_and_hunt_group(tmp_path: Path) -> None:
    path = _variant(
        tmp_path,
        ("        short_dialing: true\n        media: anchor\n",
         "        short_dialing: true\n        media: anchor\n        ring_timeout: 20\n"),
        ("            pack: calling\n            sip: {ha1_md5: \"940b",
         "            pack: calling\n            ring_timeout: 2\n            sip: {ha1_md5: \"940b"),
        ("            strategy: simultaneous\n",
         "            strategy: simultaneous\n            step: 7.5\n            ring_timeout: 25\n"),
    )
    plan = load_plan(path)
    site = plan.customers[0].sites[0]
    alice, bruno = site.users[0], site.users[1]
    assert (site.ring_timeout, alice.ring_timeout, bruno.ring_timeout) == (20, 2, None)
    group = site.hunt_groups[0]
    assert (group.step, group.ring_timeout) == (7.5, 25)
    assert plan.customers[0].sites[1].ring_timeout is None


@pytest.mark.parametrize(("value", "message"), [
    ("-2", "must be a number of seconds between 1 and 600, not -2"),
    ("0", "must be a number of seconds between 1 and 600, not 0"),
    ("soon", "must be a number of seconds between 1 and 600, not 'soon'"),
])
def test_a_bad_ring_time_names_file_line_and_field(tmp_path: Path, value: str,
                                                   message: str) -> None:
    path = _variant(tmp_path, ("            pack: calling\n            sip: {ha1_md5: \"940b",
                               f"            pack: calling\n            ring_timeout: {value}\n"
                               "            sip: {ha1_md5: \"940b"))
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1)
                if f"ring_timeout: {value}" in ln)
    with pytest.raises(ConfigError) as exc:
        load_plan(path)
    assert [str(i) for i in exc.value.issues] == [
        f"{path}:{line}: customers[0].sites[0].users[0].ring_timeout: {message}"]


def test_a_call_to_a_user_with_a_2_s_ring_time_ends_480_after_2_s(tmp_path: Path) -> None:
    path = _variant(
        tmp_path,
        ("        short_dialing: true\n        media: anchor\n",
         "        short_dialing: true\n        media: anchor\n        ring_timeout: 20\n"),
        ("            pack: calling\n            sip: {ha1_md5: \"940b",
         "            pack: calling\n            ring_timeout: 2\n            sip: {ha1_md5: \"940b"),
        ("            strategy: simultaneous\n",
         "            strategy: simultaneous\n            step: 7.5\n"),
    )
    plan = load_plan(path)
    bruno = plan.user_by_full_number("501411")
    assert bruno is not None
    at = datetime(2026, 12, 2, 10, 0)

    def decision(dialed: str) -> RoutingDecision:
        return route(plan, CallContext(caller=bruno, caller_trunk=None, dialed=dialed, at=at))

    to_alice, to_claire, to_sales = decision("501410"), decision("501412"), decision("501401")
    to_rennes = decision("502411")
    assert ring_timeout_for(to_alice, 30.0) == 2.0  # the user's
    assert ring_timeout_for(to_claire, 30.0) == 20.0  # her site's
    assert ring_timeout_for(to_rennes, 30.0) == 30.0  # the switch's
    assert ring_timeout_for(to_sales, 30.0) == 20.0  # the group's site's
    assert (hunt_step_for(to_sales, 15.0), hunt_step_for(to_alice, 15.0)) == (7.5, 15.0)

    invite = parse_message(
        b"INVITE sip:501410@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKr1\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:501411@127.0.0.1>;tag=a\r\nTo: <sip:501410@127.0.0.1>\r\n"
        b"Call-ID: ring-2s\r\nCSeq: 1 INVITE\r\nContact: <sip:501411@127.0.0.1:40000>\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert isinstance(invite, Request)
    call = Call(invite, Peer("UDP", "127.0.0.1", 40000), LocalAddress("127.0.0.1", 5060, 5061),
                100.0, ring_timeout_for(to_alice, 30.0), answer_sdp=lambda leg, body: body)
    assert call.next_deadline() == pytest.approx(102.0)
    assert not [e for e in call.handle_timer(101.9) if isinstance(e, RespondCaller)]
    effects = call.handle_timer(102.0)
    assert [e.response.status for e in effects if isinstance(e, RespondCaller)] == [480]
    assert next(e for e in effects if isinstance(e, Ended)).disposition is Disposition.NO_ANSWER


async def test_the_call_service_rings_a_user_for_their_own_ring_time(tmp_path: Path) -> None:
    """The call service, in memory (no sockets): 501411 has `ring_timeout: 2` and one
    registered phone that never answers; on a fake clock the caller gets 480 at 2 s."""
    import time

    from devices.location import Binding
    from dialplan import PlanHolder
    from switch.calls import CallService
    from switch.runtime import SipRuntime
    from switch.services.applications import PromptLibrary
    from switch.services.plan import PlanAccounts
    from switch.services.ports import CallTimers
    from switch.sip import Response
    from tests.services.test_call_service import TRUNK, Plans, Records, Registrar, invite

    path = _variant(tmp_path, (
        "            barring: internal_only\n            clir: true\n",
        "            barring: internal_only\n            clir: true\n            ring_timeout: 2\n"))
    plan = load_plan(path)
    assert plan.user_by_full_number("501411").ring_timeout == 2  # type: ignore[union-attr]
    runtime = SipRuntime()
    clock = [runtime.now()]
    runtime.now = lambda: clock[0]  # type: ignore[method-assign]
    out: list[tuple[bytes, Peer]] = []
    runtime._send = lambda data, dest, key=None: out.append((data, dest))  # type: ignore[method-assign]
    registrar = Registrar()
    phone = Peer("UDP", "127.0.0.1", 40001)
    registrar.location.load([Binding(
        "acme:501411", "sip:501411@127.0.0.1:40001", time.time() + 3600, 1.0,
        "reg", 1, None, None, "udp", phone.host, phone.port, None, "test", time.time())],
        drop_connections=False)
    calls = CallService(
        runtime, LocalAddress("127.0.0.1", 5060, 5061), plan=Plans(plan),
        accounts=PlanAccounts(PlanHolder(plan)), authority=registrar, locations=registrar,
        records=Records(), media=None, emergency=None, timers=CallTimers(ring_timeout=30.0),
        recordings=tmp_path, prompts=PromptLibrary(None))
    await calls.start()
    runtime.deliver(invite("+33562070411", "ring2"), TRUNK)
    entry = calls.by_call_id["ring2"].entry
    assert any(dest == phone for _, dest in out)  # the phone rings
    assert entry.call.next_deadline() == pytest.approx(clock[0] + 2.0)

    def finals() -> list[int]:
        return [m.status for d, dest in out if dest == TRUNK
                for m in [parse_message(d)] if isinstance(m, Response) and m.status >= 200]

    clock[0] += 1.9
    calls._fire(entry)
    assert finals() == []
    clock[0] += 0.1
    calls._fire(entry)
    assert finals() == [480]


def test_user_email_loads_and_a_bad_one_names_file_line_and_field(tmp_path: Path) -> None:
    """Voicemail e-mails go to the user's `email` (issue 13); the example's demo users have one."""
    plan = load_plan(EXAMPLE)
    alice = plan.customers[0].by_full_number["501410"]
    assert getattr(alice, "email", None) == "alice.martin@acme.example"
    path = _variant(tmp_path, ("            email: alice.martin@acme.example",
                               "            email: alice at acme"))
    with pytest.raises(ConfigError) as exc:
        load_plan(path)
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1)
                if "alice at acme" in ln)
    assert [str(i) for i in exc.value.issues] == [
        f"{path}:{line}: customers[0].sites[0].users[0].email: 'alice at acme' is not an "
        "e-mail address (name@domain.tld)"]
