"""Issue 22: three `wte serve` nodes behind Kamailio, sharing PostgreSQL.

pjsua2 phones register through the edge (Kamailio hashes the Call-ID to pick a node); a
call between phones registered on different nodes has two-way audio (the callee's node
knew the binding through the change channel, the INVITE went through the edge by the
binding's Path); then the node carrying a call is killed with -9: the call's record is
closed by a survivor, new registrations and calls succeed within 10 s, and every
acknowledged binding is still in the database.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switch.cluster.launcher import kamailio_binary, kamailio_modules

if kamailio_binary() is None or kamailio_modules() is None:
    if os.environ.get("CI") == "true":
        pytest.fail("kamailio is missing (apt-get install kamailio; .ci/run installs it)",
                    pytrace=False)
    pytest.skip("kamailio is not installed (apt-get install kamailio): the cluster edge",
                allow_module_level=True)

import pjsua2 as pj

from tests.support.cluster import (
    Cluster,
    create_database,
    drop_database,
    query,
    start_cluster,
)
from tests.support.pjphone import Phone, make_phone
from tests.support.server import config_with

CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
USERS = ("501410", "501411", "501412")
EDGE_AUTH_FAILURES = 3  # refused authentications before the edge blocks an address


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    try:
        url = create_database()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL is not reachable ({exc})")
    running = start_cluster(tmp / "run", config_with(tmp, {"calls.ring_timeout": 8}), url,
                            auth_failures=EDGE_AUTH_FAILURES)
    yield running
    running.stop()
    drop_database(url)


def register(pj_lib: Any, cluster: Cluster, user: str) -> Phone:
    phone = make_phone(pj_lib, transport="UDP", user=user, host=cluster.host,
                       port=cluster.edge_port, password=f"demo-{user}", register=True)
    assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None, cluster.logs()
    return phone


def registered_node(cluster: Cluster, phone: Phone) -> str:
    """The node the edge sent the phone's latest REGISTER to (its log, read by a thread)."""
    mark = "wte-edge: REGISTER from sip:" + phone.aor.split(":")[1] + " "
    end = time.monotonic() + 3
    while True:
        call_ids = [line.split(" call-id ")[1].split()[0] for line in list(cluster.edge.lines)
                    if mark in line]
        if call_ids or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert call_ids, cluster.logs()
    return cluster.dispatched("REGISTER", call_ids[-1])[-1]


@pytest.fixture(scope="module")
def phones(pj_lib: Any, cluster: Cluster) -> Iterator[dict[str, Phone]]:
    made = {user: register(pj_lib, cluster, user) for user in USERS}
    # two of them on different nodes: a phone that shares its node is registered afresh
    # (a new Call-ID hashes anew), a few times at most
    for _ in range(10):
        if len({registered_node(cluster, p) for p in made.values()}) > 1:
            break
        # unregistered first and waited for: an unREGISTER still in flight on another
        # node would remove the new binding (same Contact, another Call-ID)
        old = made["501411"]
        since = len(old.account.reg_events)
        old.account.setRegistration(False)
        assert old.wait_registration(lambda e: e[0] == 200, since=since) is not None
        old.shutdown()
        made["501411"] = register(pj_lib, cluster, "501411")
    yield made
    for phone in made.values():
        phone.shutdown()


def two_on_different_nodes(cluster: Cluster, phones: dict[str, Phone]) -> tuple[str, str]:
    nodes = {u: registered_node(cluster, p) for u, p in phones.items()}
    for a in USERS:
        for b in USERS:
            if nodes[a] != nodes[b]:
                return a, b
    raise AssertionError(f"every phone registered on one node: {nodes}")


def target(cluster: Cluster, user: str) -> str:
    return f"sip:{user}@{cluster.host}:{cluster.edge_port}"


def bindings(cluster: Cluster) -> set[str]:
    rows = query(cluster.url, "SELECT aor FROM registrations WHERE expires_at > $1", time.time())
    return {str(r["aor"]).rsplit(":", 1)[-1] for r in rows}


def wait_rows(cluster: Cluster, sql: str, *args: object,
              timeout: float = 5.0) -> list[dict[str, object]]:
    """Rows of `sql` once there are some (records are written behind the calls)."""
    end = time.monotonic() + timeout
    rows = query(cluster.url, sql, *args)
    while not rows and time.monotonic() < end:
        time.sleep(0.2)
        rows = query(cluster.url, sql, *args)
    return rows


def test_call_between_nodes_has_two_way_audio(pj_lib: Any, cluster: Cluster,
                                              phones: dict[str, Phone], tmp_path: Path) -> None:
    from tests.support.audio import dominant_frequency

    caller, callee = two_on_different_nodes(cluster, phones)
    account = phones[callee].account
    account.answer_with, account.tone_freq = 200, 1000
    account.record_path = str(tmp_path / "callee.wav")
    account.incoming.clear()
    call = phones[caller].call(target(cluster, callee), tone_freq=440,
                               record_path=str(tmp_path / "caller.wav"))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), cluster.logs()
        incoming = account.incoming[0]
        # the INVITE reached the phone through the edge: its Record-Route is there
        assert "Record-Route:" in incoming.incoming_msg
        assert pj_lib.wait_until(lambda: call.media_active and incoming.media_active, 5)
        pj_lib.wait_until(lambda: False, 2.5)
        call.stop_media()
        incoming.stop_media()
        call.hangup(pj.CallOpParam(True))  # the BYE goes through the edge too
        assert pj_lib.wait_until(lambda: incoming.state == DISCONNECTED, 5), cluster.logs()
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        account.answer_with = account.tone_freq = account.record_path = None
    heard_by_caller, level_a = dominant_frequency(tmp_path / "caller.wav")
    heard_by_callee, level_b = dominant_frequency(tmp_path / "callee.wav")
    assert abs(heard_by_caller - 1000) < 20 and level_a > 100, (heard_by_caller, level_a)
    assert abs(heard_by_callee - 440) < 9 and level_b > 100, (heard_by_callee, level_b)


def test_sighup_on_one_node_reloads_the_plan_on_every_node(cluster: Cluster) -> None:
    first, *others = cluster.nodes
    before = {n.node_id: cluster.procs[n.node_id].text().count("dialplan reloaded")
              for n in others}
    cluster.procs[first.node_id].proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + 5
    while time.monotonic() < end and not all(
            cluster.procs[n.node_id].text().count("dialplan reloaded") > before[n.node_id]
            for n in others):
        time.sleep(0.1)
    assert all(cluster.procs[n.node_id].text().count("dialplan reloaded") > before[n.node_id]
               for n in others), cluster.logs()


def set_office_schedule(cluster: Cluster, data_dir: Path, mode: str) -> None:
    """`wte schedule set office MODE` written to the shared database, then a wait for every
    node to read it (each polls the schedule modes every second)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "switch", "schedule", "set", "office", mode, "--config",
         str(cluster.config), "--data-dir", str(data_dir)],
        cwd=Path(__file__).parents[2], env=dict(os.environ, DATABASE_URL=cluster.url),
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(1.5)


def test_auto_attendant_sends_the_caller_to_a_phone_on_another_node(
        pj_lib: Any, cluster: Cluster, phones: dict[str, Phone], tmp_path: Path) -> None:
    """501411 dials the reception attendant (400) while the office is open (forced, so the
    test does not depend on the clock: after hours the attendant's closed route is
    voicemail); its key 0 rings 501410, whichever node
    took the call and wherever 501410 registered."""
    operator = phones["501410"].account
    operator.answer_with, operator.tone_freq = 200, 1000
    operator.incoming.clear()
    set_office_schedule(cluster, tmp_path, "open")
    call = phones["501411"].call(target(cluster, "400"))
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), cluster.logs()
        assert pj_lib.wait_until(lambda: call.media_active, 5)
        pj_lib.wait_until(lambda: False, 1.0)  # the greeting starts
        call.dialDtmf("0")  # RFC 4733
        assert pj_lib.wait_until(lambda: len(operator.incoming) == 1, 10), cluster.logs()
        assert pj_lib.wait_until(lambda: operator.incoming[0].state == CONFIRMED, 5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        operator.answer_with = operator.tone_freq = None
        operator.incoming.clear()
        set_office_schedule(cluster, tmp_path, "auto")


def api(cluster: Cluster, node: str, path: str, user: str) -> tuple[int, bytes]:
    spec = next(n for n in cluster.nodes if n.node_id == node)
    req = urllib.request.Request(f"http://{spec.host}:{spec.sip_port + 4}{path}")
    token = base64.b64encode(f"{user}:demo-{user}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_voicemail_deposit_is_seen_by_every_node(
        pj_lib: Any, cluster: Cluster, phones: dict[str, Phone]) -> None:
    """A busy deposit for 501412, taken by one node: every node's visual voicemail lists it
    (the message-waiting notice made them reload) and serves its audio (shared files)."""
    phones["501412"].account.answer_with = 486
    call = phones["501411"].call(target(cluster, "501412"), tone_freq=440)  # the message
    try:
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), cluster.logs()
        assert pj_lib.wait_until(lambda: call.media_active, 5)
        assert pj_lib.wait_until(lambda: any(
            f"recording call={call.sip_call_id}" in p.text() for p in cluster.procs.values()),
            20), cluster.logs()
        pj_lib.wait_until(lambda: False, 2.0)
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 10)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        phones["501412"].account.answer_with = None
        phones["501412"].account.incoming.clear()
    for node in cluster.procs:
        end = time.monotonic() + 5
        while True:
            status, body = api(cluster, node, "/voicemail/v1/messages", "501412")
            box = json.loads(body) if status == 200 else {}
            if box.get("new") == 1 or time.monotonic() > end:
                break
            time.sleep(0.2)
        assert box.get("new") == 1, (node, status, body[:300], cluster.logs())
        status, wav = api(cluster, node, f"/voicemail/v1/messages/{box['messages'][0]['id']}"
                          "/audio", "501412")
        assert status == 200 and wav[:4] == b"RIFF", (node, status)


def test_queue_and_night_switch_work_whatever_node(
        pj_lib: Any, cluster: Cluster, phones: dict[str, Phone], tmp_path: Path) -> None:
    """`wte schedule set office open` written to the shared database reaches every node;
    501411 calls the support queue (402): whichever node takes the call offers it to an
    agent (501410 or 501412), wherever that agent registered."""
    agents = [phones["501410"].account, phones["501412"].account]
    for a in agents:
        a.answer_with = 200
        a.incoming.clear()
    set_office_schedule(cluster, tmp_path, "open")
    try:
        call = phones["501411"].call(target(cluster, "402"))
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), cluster.logs()
        assert pj_lib.wait_until(lambda: any(a.incoming for a in agents), 15), cluster.logs()
        taken = next(a.incoming[0] for a in agents if a.incoming)
        assert pj_lib.wait_until(lambda: taken.state == CONFIRMED, 5)
        assert "501411" in taken.incoming_msg.split("\r\n\r\n")[0]  # the caller shown
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        for a in agents:
            a.answer_with = None
            a.incoming.clear()
        set_office_schedule(cluster, tmp_path, "auto")


def test_a_phone_connected_over_tcp_is_called_through_its_connection(
        pj_lib: Any, cluster: Cluster, phones: dict[str, Phone]) -> None:
    """501420 registers over TCP: the edge's Path names its connection, so a node's INVITE
    (over UDP to the edge) reaches it over the TCP connection it opened (RFC 3327, 5626)."""
    room = make_phone(pj_lib, transport="TCP", user="501420", host=cluster.host,
                      port=cluster.edge_port, password="demo-501420", register=True)
    try:
        assert room.wait_registration(lambda e: e[0] == 200, since=0), cluster.logs()
        [path] = [r["path"] for r in query(cluster.url, "SELECT path FROM registrations "
                                           "WHERE aor LIKE '%:501420'")]
        assert "received=sip:127.0.0.1:" in str(path) and "transport%3dtcp" in str(path).lower()
        room.account.answer_with = 200
        call = phones["501410"].call(target(cluster, "501420"))
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), cluster.logs()
        assert "SIP/2.0/TCP" in room.account.incoming[0].incoming_msg  # the edge's Via
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: room.account.incoming[0].state == DISCONNECTED, 5)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.5)
        room.shutdown()


SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios" / "cluster").glob("*.yaml"))


@pytest.mark.parametrize("engine", ["own", "pjsua2"])
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenarios_through_the_edge(path: Path, engine: str, cluster: Cluster,
                                    request: pytest.FixtureRequest) -> None:
    import asyncio
    import io

    from scenarios import load_scenario
    from scenarios.cli import make_engine, play
    from scenarios.engine import Pump

    pj_lib = request.getfixturevalue("pj_lib") if engine == "pjsua2" else None
    pump = Pump()
    runner = make_engine(engine, pump, pj_lib)
    out = io.StringIO()
    try:
        [result] = asyncio.run(play([load_scenario(path)], (cluster.host, cluster.edge_port),
                                    runner, pump, out))
    finally:
        asyncio.run(runner.close())
    assert result.passed, out.getvalue() + cluster.logs()


def test_killed_node_loses_no_binding_and_service_resumes(
        pj_lib: Any, cluster: Cluster, phones: dict[str, Phone]) -> None:
    acknowledged = set(USERS)  # each phone had its 200 OK (the phones fixture)
    assert bindings(cluster) >= acknowledged
    caller, callee = two_on_different_nodes(cluster, phones)
    account = phones[callee].account
    account.answer_with = 200
    account.incoming.clear()
    call = phones[caller].call(target(cluster, callee))
    assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), cluster.logs()
    sip_call_id = call.sip_call_id
    victim = cluster.dispatched("INVITE", sip_call_id)[-1]
    open_rows = wait_rows(cluster, "SELECT node_id FROM call_records WHERE call_id = $1 "
                          "AND answer IS NOT NULL AND \"end\" IS NULL", sip_call_id)
    assert [r["node_id"] for r in open_rows] == [victim]  # the record names its node

    cluster.kill(victim)
    killed_at = time.monotonic()
    # the phones give the dead call up: their BYEs time out at the edge (a 408 after 2 s),
    # which frees the calls (pjsua2 holds 4 at most)
    pj_lib.ep.hangupAllCalls()
    dead_legs = [call, *account.incoming]
    assert pj_lib.wait_until(lambda: all(c.state == DISCONNECTED for c in dead_legs), 8), (
        pj_lib.active_calls())

    # within 10 s: every phone registers again (a Call-ID that hashes to the dead node is
    # moved to another by the edge), and calls both ways between two nodes' phones work
    for user, phone in phones.items():
        since = len(phone.account.reg_events)
        phone.account.setRegistration(True)
        assert phone.wait_registration(lambda e: e[0] == 200, timeout=10, since=since), (
            user, phone.account.reg_events[since:], cluster.logs())
    assert not pj_lib.active_calls(), pj_lib.active_calls()
    for a, b in ((caller, callee), (callee, caller)):
        phones[b].account.answer_with = 200
        phones[b].account.incoming.clear()
        c = phones[a].call(target(cluster, b))
        assert pj_lib.wait_until(lambda: c.state == CONFIRMED, 10), cluster.logs()  # noqa: B023
        c.hangup(pj.CallOpParam(True))
        # both legs end before the next call: this pjsua2 build holds 4 calls
        legs = [c, *phones[b].account.incoming]
        assert pj_lib.wait_until(
            lambda: all(leg.state == DISCONNECTED for leg in legs), 5), (  # noqa: B023
            pj_lib.active_calls(), cluster.logs())
        phones[b].account.answer_with = None
    recovered = time.monotonic() - killed_at
    assert recovered < 10, f"service took {recovered:.1f} s to come back"

    # a survivor closed the dead node's record of the call it carried
    closed = wait_rows(cluster, "SELECT cause FROM call_records WHERE call_id = $1 "
                       "AND \"end\" IS NOT NULL", sip_call_id,
                       timeout=max(0.5, 10 - (time.monotonic() - killed_at)))
    assert closed and closed[0]["cause"] == "abandoned: node failed", cluster.logs()
    assert bindings(cluster) >= acknowledged  # no acknowledged binding was lost


def test_the_edge_blocks_an_address_that_keeps_failing_authentication(
        pj_lib: Any, cluster: Cluster, phones: dict[str, Phone]) -> None:
    """The nodes see the edge's address, so the edge counts refused authentications per
    phone address: after 3, every request from that address is refused at the edge, a
    good password included (runs last: every test phone shares 127.0.0.1)."""
    guesser = make_phone(pj_lib, transport="UDP", user="501411", host=cluster.host,
                         port=cluster.edge_port, password="not-the-password", register=True)
    try:
        for attempt in range(EDGE_AUTH_FAILURES):
            since = 0 if attempt == 0 else len(guesser.account.reg_events)
            if attempt:
                guesser.account.setRegistration(True)
            assert guesser.wait_registration(lambda e: e[0] == 403, timeout=15, since=since), (
                guesser.account.reg_events, cluster.logs())
        end = time.monotonic() + 3  # the edge's log is read by a thread
        while not any("blocked for" in line for line in list(cluster.edge.lines)):
            assert time.monotonic() < end, cluster.logs()
            time.sleep(0.05)
        good = phones["501410"]
        since = len(good.account.reg_events)
        good.account.setRegistration(True)
        assert good.wait_registration(lambda e: e[0] == 403, since=since), (
            good.account.reg_events[since:])
    finally:
        guesser.shutdown()


def _free_block(size: int = 30) -> int:
    """A port P with UDP and TCP P..P+size free (`wte cluster up` puts node i on P+10i)."""
    import socket

    from scenarios.switchproc import free_udp_port

    for _ in range(100):
        base = free_udp_port()
        if base + size > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + size):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sk = socket.socket(socket.AF_INET, kind)
                    socks.append(sk)
                    sk.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for sk in socks:
                sk.close()
    raise RuntimeError("no free block of ports")


def test_cluster_up_serves_through_the_edge_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`wte cluster up --nodes 2` as an operator runs it: the edge answers an OPTIONS by
    way of a node, and SIGINT stops everything with status 0."""
    import subprocess
    import sys

    from tests.support.sipclient import UdpClient, options_request

    url = create_database()
    port = _free_block()
    proc = subprocess.Popen(
        [sys.executable, "-m", "switch", "cluster", "up", "--nodes", "2", "--sip-port",
         str(port), "--run-dir", str(tmp_path / "run"), "--config",
         str(config_with(tmp_path, {}))],
        cwd=Path(__file__).parents[2], env=dict(os.environ, DATABASE_URL=url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops them all" in line:
                break
        assert any(line.startswith("node2: sip:127.0.0.1:") for line in lines), lines
        answer = None
        client = UdpClient("127.0.0.1", port)
        try:
            end = time.monotonic() + 30
            while answer is None and time.monotonic() < end:  # the nodes are starting
                client.send(options_request("127.0.0.1", port, local_port=client.local_port))
                try:
                    answer = client.recv()
                except TimeoutError:
                    continue
                if answer.status != 200:
                    answer = None
                    time.sleep(0.5)
        finally:
            client.close()
        assert answer is not None and answer.status == 200
        assert "OPTIONS" in (answer.headers.get("Allow") or "")  # a node's answer
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
        assert proc.returncode == 0 and "stopped" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        drop_database(url)
