"""Subscriptions over real UDP (issue 17): busy lamp field (dialog, RFC 4235), presence
(RFC 3856), authorization inside the customer with one answer for forbidden and unknown
targets, and subscriptions that outlive a switch restart.

The watched phones are pjsua2 accounts (an independent SIP stack); the watcher is the raw
subscriber of tests/support/subclient.py, so the test sees the exact NOTIFY bodies."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from tests.support.pjphone import Phone, make_phone
from tests.support.server import EXAMPLE_CONFIG, RunningSwitch, start_switch, write_config
from tests.support.subclient import Notify, Subscriber

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
OTHER_DOMAIN = "globex.wte.example"


def _ha1(user: str, realm: str, password: str, algo: str) -> str:
    h = hashlib.md5 if algo == "md5" else hashlib.sha256
    return h(f"{user}:{realm}:{password}".encode()).hexdigest()


def two_customer_config(tmp: Path) -> Path:
    """The example plan plus a second customer (globex) with one user, 501410 as well:
    full numbers repeat across customers, authorization must not."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    acme = data["customers"][0]
    other = copy.deepcopy(acme)
    other.update(id="globex", name="Globex", sip_domain=OTHER_DOMAIN, domains=[])
    other.pop("realm", None)
    site = copy.deepcopy(acme["sites"][0])
    for key in list(site):
        if key not in ("code", "name", "address", "timezone", "trunk", "emergency_trunk",
                       "networks"):
            site.pop(key)
    site["numbers"] = ["+33563070400-+33563070499"]
    site["main_number"] = "+33563070400"
    site["users"] = [{"name": "Gus Other", "number": "+33563070410", "pack": "calling",
                      "sip": {"ha1_md5": _ha1("501410", OTHER_DOMAIN, "demo-other", "md5"),
                              "ha1_sha256": _ha1("501410", OTHER_DOMAIN, "demo-other",
                                                 "sha256")}}]
    other["sites"] = [site]
    for key in ("auto_attendants", "queues", "call_queues", "hunt_groups", "schedules"):
        other.pop(key, None)
    other["feature_codes"] = {code: feature for code, feature in other["feature_codes"].items()
                              if isinstance(feature, str)}  # no schedule: no night switch
    data["customers"].append(other)
    data["switch"] = {"calls": {"ring_timeout": 20}}
    return write_config(tmp / "two-customers.yaml", data)


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("subs")
    running = start_switch(tmp / "var", config=two_customer_config(tmp))
    yield running
    running.stop()


def phone(pj_lib: Any, switch: RunningSwitch, user: str) -> Phone:
    p = make_phone(pj_lib, transport="UDP", user=user, host=switch.host, port=switch.port,
                   password=f"demo-{user}", register=True)
    assert p.wait_registration(lambda e: e[0] == 200, since=0) is not None
    return p


def watcher(switch: RunningSwitch, user: str = "501412", password: str = "demo-501412",
            domain: str = "127.0.0.1") -> Subscriber:
    return Subscriber(user, password, switch.host, switch.port, domain=domain)


def _pump_until(pj_lib: Any, sub: Subscriber, pred: Any, since: int,
                timeout: float = 8.0) -> Notify | None:
    """Poll the pjsua2 library and the raw subscriber together."""
    found: list[Notify] = []

    def check() -> bool:
        sub.pump(0.02)
        n = next((n for n in sub.notifies[since:] if pred(n)), None)
        if n is not None:
            found.append(n)
        return n is not None

    pj_lib.wait_until(check, timeout)
    return found[0] if found else None


def test_busy_lamp_shows_the_caller_then_talking_then_idle(
        pj_lib: Any, switch: RunningSwitch) -> None:
    alice, bruno = phone(pj_lib, switch, "501410"), phone(pj_lib, switch, "501411")
    sub = watcher(switch)
    try:
        resp = sub.subscribe("501410", "dialog")
        assert resp.status == 200, switch.log_text()[-2000:]
        assert int(resp.headers.get("Expires") or 0) == 600
        first = _pump_until(pj_lib, sub, lambda n: True, 0)
        assert first is not None and first.event == "dialog"
        assert first.state.startswith("active;expires=")
        assert 'state="full"' in first.body and "<dialog " not in first.body

        call = bruno.call(f"sip:501410@{switch.host}:{switch.port}")
        early = _pump_until(pj_lib, sub, lambda n: "<state>early</state>" in n.body, 1)
        assert early is not None, switch.log_text()[-3000:]
        assert 'direction="recipient"' in early.body
        assert "sip:501411@" in early.body  # who is calling, for pickup display

        assert pj_lib.wait_until(lambda: bool(alice.account.incoming), 5)
        op = pj.CallOpParam()
        op.statusCode = 200
        alice.account.incoming[0].answer(op)
        talking = _pump_until(pj_lib, sub, lambda n: "<state>confirmed</state>" in n.body, 1)
        assert talking is not None
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 5)

        call.hangup(pj.CallOpParam(True))
        ended = _pump_until(pj_lib, sub, lambda n: "<state>terminated</state>" in n.body, 1)
        assert ended is not None
        versions = [int(re.search(r'<dialog-info [^>]*version="(\d+)"', n.body)[1])  # type: ignore[index]
                    for n in sub.notifies]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        # un-SUBSCRIBE: 200, then a last NOTIFY saying the subscription ended
        seen = len(sub.notifies)
        assert sub.subscribe("501410", "dialog", expires=0).status == 200
        last = _pump_until(pj_lib, sub, lambda n: n.state.startswith("terminated"), seen)
        assert last is not None
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        sub.close()
        alice.shutdown()
        bruno.shutdown()


def test_presence_closes_when_the_phone_unregisters(pj_lib: Any,
                                                   switch: RunningSwitch) -> None:
    alice = phone(pj_lib, switch, "501410")
    sub = watcher(switch)
    try:
        assert sub.subscribe("501410", "presence").status == 200
        first = _pump_until(pj_lib, sub, lambda n: "<basic>" in n.body, 0)
        assert first is not None and "<basic>open</basic>" in first.body
        alice.account.setRegistration(False)
        closed = _pump_until(pj_lib, sub, lambda n: "<basic>closed</basic>" in n.body, 1)
        assert closed is not None, switch.log_text()[-2000:]
    finally:
        sub.close()
        alice.shutdown()


def test_presence_shows_do_not_disturb(pj_lib: Any, switch: RunningSwitch) -> None:
    """501410 turns DND on with *78 (issue 15): its watchers get a PIDF with the RPID
    `busy` activity and the note "Do not disturb"; *79 takes them away again."""
    alice = phone(pj_lib, switch, "501410")
    sub = watcher(switch)

    def dial(code: str) -> None:
        call = alice.call(f"sip:{code}@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 15)

    try:
        assert sub.subscribe("501410", "presence").status == 200
        first = _pump_until(pj_lib, sub, lambda n: "<basic>" in n.body, 0)
        assert first is not None and "Do not disturb" not in first.body
        seen = len(sub.notifies)
        dial("%2A78")
        dnd = _pump_until(pj_lib, sub, lambda n: "Do not disturb" in n.body, seen)
        assert dnd is not None, switch.log_text()[-2000:]
        assert "<rpid:busy/>" in dnd.body and "<basic>open</basic>" in dnd.body
        seen = len(sub.notifies)
        dial("%2A79")
        back = _pump_until(pj_lib, sub, lambda n: "<basic>" in n.body
                           and "Do not disturb" not in n.body, seen)
        assert back is not None, switch.log_text()[-2000:]
    finally:
        sub.close()
        alice.shutdown()


def test_pjsua2_buddy_sees_presence_open_then_closed(pj_lib: Any,
                                                     switch: RunningSwitch) -> None:
    """An independent stack's presence subscription (pjsua2 buddy, PIDF parsing)."""
    claire = phone(pj_lib, switch, "501412")
    alice = phone(pj_lib, switch, "501410")
    try:
        buddy = claire.watch(f"sip:501410@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: any(s[0] for s in buddy.states), 8), (
            buddy.states, switch.log_text()[-2000:])
        alice.account.setRegistration(False)
        assert pj_lib.wait_until(lambda: bool(buddy.states) and not buddy.states[-1][0], 8), (
            buddy.states, switch.log_text()[-2000:])
    finally:
        alice.shutdown()
        claire.shutdown()


def _comparable(resp: Any) -> tuple[object, ...]:
    """A response without what differs per request (tags, branch, Call-ID, CSeq)."""
    names = sorted(n.lower() for n, _ in resp.headers.items()
                   if n.lower() not in ("via", "from", "to", "call-id", "cseq"))
    return (resp.status, resp.reason, tuple(names), resp.body)


def test_other_customer_and_unknown_user_get_the_same_403(switch: RunningSwitch) -> None:
    outsider = watcher(switch, "501410", "demo-other", domain=OTHER_DOMAIN)
    insider = watcher(switch)
    try:
        # globex's 501410 asks for acme's 501411 (exists, other customer)...
        forbidden = outsider.subscribe("501411", "dialog")
        # ...and for 501499, which exists nowhere
        outsider2 = watcher(switch, "501410", "demo-other", domain=OTHER_DOMAIN)
        unknown = outsider2.subscribe("501499", "dialog")
        # an acme user asking for an unknown number: the same answer again
        insider_unknown = insider.subscribe("501499", "presence")
        assert forbidden.status == unknown.status == insider_unknown.status == 403
        assert _comparable(forbidden) == _comparable(unknown) == _comparable(insider_unknown)
        outsider2.close()
        # an unknown event package: 489 with the ones we serve
        bad = watcher(switch).subscribe("501410", "conference")
        assert bad.status == 489
        assert "dialog" in (bad.headers.get("Allow-Events") or "")
        # too short: 423 with Min-Expires
        brief = watcher(switch).subscribe("501410", "dialog", expires=5)
        assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
    finally:
        outsider.close()
        insider.close()


def test_subscription_survives_a_restart(pj_lib: Any, tmp_path: Path) -> None:
    config = two_customer_config(tmp_path)
    running = start_switch(tmp_path / "var", config=config)
    port = running.port
    sub = watcher(running)
    alice: Phone | None = None
    try:
        assert sub.subscribe("501410", "presence").status == 200
        assert sub.wait_notify(lambda n: "<basic>closed</basic>" in n.body) is not None
        sub.pump(0.5)  # let the subscription be written
        running.stop()
        running = start_switch(tmp_path / "var", config=config, port=port)
        seen = len(sub.notifies)
        # the restarted switch NOTIFYs the restored subscription by itself
        again = sub.wait_notify(lambda n: "<basic>" in n.body, 8.0, since=seen)
        assert again is not None, running.log_text()[-2000:]
        assert again.cseq > sub.notifies[seen - 1].cseq  # a higher CSeq in the same dialog
        # ...and the next change reaches it without a new SUBSCRIBE
        seen = len(sub.notifies)
        alice = phone(pj_lib, running, "501410")
        opened = _pump_until(pj_lib, sub, lambda n: "<basic>open</basic>" in n.body, seen)
        assert opened is not None, running.log_text()[-2000:]
    finally:
        if alice is not None:
            alice.shutdown()
        sub.close()
        running.stop()


BLF_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "own_engine" / \
    "busy_lamp_field.yaml"


def test_scenario_steps_subscribe_and_expect_notify(switch: RunningSwitch,
                                                     tmp_path: Path) -> None:
    import asyncio
    import io

    from scenarios import ScenarioFileError, load_scenario
    from scenarios.cli import make_engine, play
    from scenarios.engine import Pump

    path = BLF_SCENARIO
    with pytest.raises(ScenarioFileError) as refused:  # pjsua2 cannot play these steps
        load_scenario(path, engine="pjsua2")
    assert "subscribe" in str(refused.value)
    pump = Pump()
    engine = make_engine("own", pump, None)
    out = io.StringIO()
    try:
        results = asyncio.run(play([load_scenario(path, engine="own")],
                                   (switch.host, switch.port), engine, pump, out,
                                   str(switch.data_dir)))
    finally:
        asyncio.run(engine.close())
    assert results[0].passed, out.getvalue()
