"""The admin and self-service REST API on a running switch (issue 18): tokens and roles,
scope answered 404, a user's forwarding set through the API and followed by a pjsua2
call, the dialplan replaced (refused with line and field, then accepted) and rolled back,
the night switch and queue agents, and an audit entry for each change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pjsua2 as pj
import pytest
import yaml

from tests.support.api import ApiClient
from tests.support.pjphone import Phone, make_phone
from tests.support.server import REPO, RunningSwitch, start_switch, write_config
from tests.system.test_subscriptions import OTHER_DOMAIN, two_customer_config

OPERATOR = "operator-test-token-0123456789"
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED


def api_config(tmp: Path) -> Path:
    """Two customers (acme and globex, each with a 501410); acme's 501411 without
    voicemail, so that its DND shows as a busy status (tests/system/test_portal_browser.py)."""
    data = yaml.safe_load(two_customer_config(tmp).read_text(encoding="utf-8"))
    for site in data["customers"][0]["sites"]:
        for user in site.get("users", []):
            if user.get("number") == "+33562070411":
                user["voicemail"] = False
    # live rating on: the sites' minute bundles (GET .../sites/{code}/bundle)
    data["switch"]["rating"] = {"file": str(REPO / "config" / "rating.yaml")}
    return write_config(tmp / "api.yaml", data)


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("api")
    running = start_switch(tmp / "var", config=api_config(tmp),
                           env={"WTE_ADMIN_TOKEN": OPERATOR})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def base(switch: RunningSwitch) -> ApiClient:
    return ApiClient(f"http://{switch.host}:{switch.http_port}")


@pytest.fixture(scope="module")
def op(base: ApiClient) -> ApiClient:
    return base.with_token(OPERATOR)


def phone(pj_lib: Any, switch: RunningSwitch, user: str) -> Phone:
    p = make_phone(pj_lib, transport="UDP", user=user, host=switch.host, port=switch.port,
                   password=f"demo-{user}", register=True)
    assert p.wait_registration(lambda e: e[0] == 200, since=0) is not None
    return p


def test_openapi_document_and_docs_are_served(base: ApiClient) -> None:
    doc = base.get("/api/v1/openapi.json")
    assert doc.status == 200
    assert doc.body["openapi"].startswith("3.")
    assert "/customers/{customer_id}/users" in doc.body["paths"]
    assert "HTTPBearer" in doc.body["components"]["securitySchemes"]
    docs = base.get("/api/v1/docs")
    assert docs.status == 200 and "swagger-ui-bundle.js" in docs.body
    script = base.get("/api/v1/docs/static/swagger-ui-bundle.js")
    assert script.status == 200 and len(script.raw) > 100_000  # served locally
    assert base.get("/portal/index.html").status == 200


def test_operator_token_creates_a_customer_admin_scoped_to_its_customer(
        base: ApiClient, op: ApiClient) -> None:
    assert base.get("/api/v1/customers").status == 401
    assert base.with_token("wte_not-a-token").get("/api/v1/customers").status == 401
    assert {c["id"] for c in op.get("/api/v1/customers").body} == {"acme", "globex"}

    made = op.post("/api/v1/tokens", {"role": "customer-admin", "customer": "acme",
                                      "name": "acme portal"})
    assert made.status == 201, made.body
    admin = base.with_token(made.body["token"])
    listed = op.get("/api/v1/tokens").body
    assert any(t["id"] == made.body["id"] for t in listed)
    assert all("token" not in t for t in listed)  # never shown again

    assert [c["id"] for c in admin.get("/api/v1/customers").body] == ["acme"]
    users = admin.get("/api/v1/customers/acme/users")
    assert users.status == 200
    assert "501410" in {u["number"] for u in users.body}
    # another customer's users, and a customer that does not exist: the same 404
    theirs = admin.get("/api/v1/customers/globex/users")
    nobody = admin.get("/api/v1/customers/no-such-customer/users")
    assert theirs.status == nobody.status == 404
    assert theirs.body == nobody.body
    assert admin.get("/api/v1/audit").status == 404  # operators only
    # its users' settings, not another customer's (globex has a 501410 too)
    assert admin.put("/api/v1/customers/acme/users/501412/settings",
                     {"call_waiting": False}).body["call_waiting"] is False
    assert admin.put("/api/v1/customers/acme/users/501412/settings",
                     {"call_waiting": True}).status == 200
    assert admin.put("/api/v1/customers/globex/users/501410/settings",
                     {"dnd": True}).status == 404
    assert op.get("/api/v1/customers/globex/users/501410/settings").body["dnd"] is False
    assert admin.post("/api/v1/tokens", {"role": "operator"}).status == 404  # no escalation

    assert op.request("DELETE", f"/api/v1/tokens/{made.body['id']}").status == 204
    assert admin.get("/api/v1/customers").status == 401  # revoked


def test_cli_tokens_create_list_revoke(switch: RunningSwitch, base: ApiClient) -> None:
    def wte(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "switch", "tokens", *args,
                               "--data-dir", str(switch.data_dir)], cwd=REPO,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "WTE_ADMIN_TOKEN": ""})

    out = wte("create", "--role", "customer-admin", "--customer", "globex",
              "--config", str(switch.config))
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    admin = base.with_token(made["token"])
    assert [c["id"] for c in admin.get("/api/v1/customers").body] == ["globex"]
    assert admin.get("/api/v1/customers/acme/users").status == 404
    listing = wte("list")
    assert made["id"] in listing.stdout and made["token"] not in listing.stdout
    assert wte("create", "--role", "customer-admin").returncode == 2  # no customer
    assert wte("revoke", made["id"]).returncode == 0
    assert admin.get("/api/v1/customers").status == 401


def test_user_logs_in_with_sip_credentials_sees_only_itself(base: ApiClient) -> None:
    bad = base.post("/api/v1/session", {"username": "501410", "password": "wrong"})
    unknown = base.post("/api/v1/session", {"username": "509999", "password": "wrong"})
    assert bad.status == unknown.status == 401 and bad.body == unknown.body
    alice = base.login("501410", "demo-501410")
    me = alice.get("/api/v1/me").body
    assert (me["role"], me["customer"], me["user"]) == ("user", "acme", "501410")
    assert alice.get("/api/v1/customers/acme/users").status == 404  # not an admin
    gus = base.login("501410", "demo-other", domain=OTHER_DOMAIN)
    assert gus.get("/api/v1/me").body["customer"] == "globex"
    assert gus.request("DELETE", "/api/v1/session").status == 204
    assert gus.get("/api/v1/me").status == 401  # logged out


def test_forwarding_set_through_the_api_is_followed_by_a_call(
        pj_lib: Any, switch: RunningSwitch, base: ApiClient) -> None:
    alice = base.login("501410", "demo-501410")
    got = alice.put("/api/v1/me/settings", {"forward_always": "501412"})
    assert got.status == 200 and got.body["forward_always"] == "501412"
    a, b, c = (phone(pj_lib, switch, u) for u in ("501410", "501411", "501412"))
    try:
        b.call(f"sip:501410@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: len(c.account.incoming) == 1, 8), \
            switch.log_text()[-3000:]
        assert a.account.incoming == []  # forwarded: Alice's phone never rang
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        assert alice.put("/api/v1/me/settings", {"forward_always": ""}).body[
            "forward_always"] is None
        # a barred destination is refused with its field: 501411 calls internally only
        bruno = base.login("501411", "demo-501411")
        barred = bruno.put("/api/v1/me/settings", {"forward_always": "0612345678"})
        assert barred.status == 422 and barred.body["error"].startswith("forward_always")
    finally:
        pj_lib.ep.hangupAllCalls()
        for p in (a, b, c):
            p.shutdown()


def test_bad_plan_is_refused_with_line_and_field_then_rollback(
        switch: RunningSwitch, base: ApiClient, op: ApiClient) -> None:
    original = op.get("/api/v1/plan")
    assert original.status == 200 and "ACME Industries" in original.body
    generation = base.get("/healthz").body["checks"]["plan"]["generation"]

    broken = original.body.replace("pack: suite", "pack: deluxe", 1)
    line = broken.splitlines().index(
        next(x for x in broken.splitlines() if "pack: deluxe" in x)) + 1
    refused = op.request("PUT", "/api/v1/plan", raw=broken.encode(),
                         content_type="application/yaml")
    assert refused.status == 422, refused.body
    issue = refused.body["issues"][0]
    assert issue["line"] == line and issue["field"].endswith(".pack"), issue
    assert base.get("/healthz").body["checks"]["plan"]["generation"] == generation
    assert op.get("/api/v1/plan").body == original.body  # the file stays too

    renamed = original.body.replace("name: Alice Martin", "name: Alice Renamed", 1)
    accepted = op.request("PUT", "/api/v1/plan", raw=renamed.encode(),
                          content_type="application/yaml")
    assert accepted.status == 200, accepted.body
    assert base.get("/healthz").body["checks"]["plan"]["generation"] == generation + 1
    names = {u["number"]: u["name"] for u in op.get("/api/v1/customers/acme/users").body}
    assert names["501410"] == "Alice Renamed"
    assert op.get("/api/v1/plan/versions").body[0]["name"] == accepted.body["kept"]

    back = op.post("/api/v1/plan/rollback")
    assert back.status == 200, back.body
    names = {u["number"]: u["name"] for u in op.get("/api/v1/customers/acme/users").body}
    assert names["501410"] == "Alice Martin"
    assert op.get("/api/v1/plan").body == original.body


def test_night_switch_and_queue_agents_through_the_api(op: ApiClient) -> None:
    closed = op.put("/api/v1/customers/acme/schedules/office/mode", {"mode": "closed"})
    assert closed.status == 200 and closed.body["mode"] == "closed"
    assert closed.body["open_now"] is False
    assert op.put("/api/v1/customers/acme/schedules/office/mode",
                  {"mode": "auto"}).body["mode"] == "auto"
    out = op.put("/api/v1/customers/acme/queues/support/agents/501412",
                 {"logged_in": False})
    assert out.status == 200
    assert {a["number"]: a["status"] for a in out.body["agents"]}["501412"] == "logged_out"
    back = op.put("/api/v1/customers/acme/queues/support/agents/501412", {"logged_in": True})
    assert {a["number"]: a["status"] for a in back.body["agents"]}["501412"] == "free"


def test_audit_log_has_each_change(op: ApiClient) -> None:
    entries = op.get("/api/v1/audit?limit=500").body
    actions = {e["action"] for e in entries}
    assert {"token.create", "token.revoke", "user.settings", "plan.refused", "plan.put",
            "plan.rollback", "schedule.mode", "queue.agent"} <= actions, actions
    put = next(e for e in entries if e["action"] == "plan.put")
    assert put["actor"] == "env:WTE_ADMIN_TOKEN" and put["source"] == "127.0.0.1"
    assert put["at"] > 0


def test_call_records_filters_and_csv(op: ApiClient) -> None:
    rows = op.get("/api/v1/customers/acme/calls?user=501411").body
    assert rows and all("501411" in (r["caller"], r["callee"]) for r in rows)
    csv = op.get("/api/v1/customers/acme/calls?format=csv&user=501411")
    assert csv.status == 200
    lines = csv.raw.decode().splitlines()
    assert lines[0].startswith("id,call_id,caller") and len(lines) == len(rows) + 1
    assert op.get("/api/v1/customers/globex/calls?user=501411").body == []


ANSWERED_SCENARIO = """\
name: an answered call, its record read through the API
phones:
  chloe: {account: "502411", password: demo-502411}
  david: {account: "502412", password: demo-502412}
steps:
  - chloe: register
  - david: register
  - david: {dial: "502411"}
  - chloe: {expect_ringing: {timeout: 5}}
  - chloe: answer
  - david: {expect_state: confirmed}
  - wait: 0.2
  - david: hangup
  - chloe: {expect_state: disconnected}
  - david: {expect_record: {field: disposition, equals: answered}}
  - david: {expect_record: {field: callee, equals: "502411"}}
"""


def test_scenario_runner_reads_records_through_the_api(switch: RunningSwitch,
                                                      tmp_path: Path) -> None:
    """`wte scenario run --target ... --api-token ...`: expect_record on a switch the runner
    did not start, through GET /api/v1/calls?call_id=...; a wrong token fails the step.
    (Users no other test of this module registers: their phones are gone but their
    bindings stay until they expire.)"""
    scenario = tmp_path / "answered.yaml"
    scenario.write_text(ANSWERED_SCENARIO, encoding="utf-8")

    def run(token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "switch", "scenario", "run", str(scenario),
             "--target", f"{switch.host}:{switch.port}",
             "--carrier", f"127.0.0.1:{switch.carrier_port}", "--api-token", token],
            cwd=REPO, capture_output=True, text=True, timeout=120)

    good = run(OPERATOR)
    assert good.returncode == 0, [x for x in good.stdout.splitlines() if "FAIL" in x or "failed:" in x]
    assert "expect_record disposition equals 'answered'" in good.stdout
    bad = run("wte_wrong")
    assert bad.returncode == 1
    assert "refused the token (401)" in bad.stdout


def _wav(seconds: float, rate: int = 16000) -> bytes:
    import io
    import math
    import struct
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i
                                                                         / rate)))
                               for i in range(int(seconds * rate))))
    return buf.getvalue()


def test_announcement_upload_is_decoded_once_and_listed(op: ApiClient) -> None:
    made = op.request("PUT", "/api/v1/customers/acme/announcements/api-welcome",
                      raw=_wav(1.5), content_type="audio/wav")
    assert made.status == 201, made.body
    assert abs(made.body["seconds"] - 1.5) < 0.05  # stored at 8 kHz, same length
    listed = op.get("/api/v1/customers/acme/announcements").body
    assert {"customer": "acme", "name": "api-welcome", "seconds": made.body["seconds"]} \
        in listed
    junk = op.request("PUT", "/api/v1/customers/acme/announcements/junk",
                      raw=b"not audio at all" * 10, content_type="audio/wav")
    assert junk.status == 422
    assert "junk" not in {a["name"] for a in op.get(
        "/api/v1/customers/acme/announcements").body}
    entries = op.get("/api/v1/audit?customer=acme").body
    assert any(e["action"] == "announcement.upload" and e["target"] == "acme/api-welcome"
               for e in entries)


def test_active_calls_listed_and_hung_up_by_an_admin(
        pj_lib: Any, switch: RunningSwitch, op: ApiClient) -> None:
    admin = op.with_token(op.post("/api/v1/tokens", {"role": "customer-admin",
                                                     "customer": "acme"}).body["token"])
    a, c = phone(pj_lib, switch, "501410"), phone(pj_lib, switch, "501412")
    try:
        c.account.answer_with = 200
        call = a.call(f"sip:501412@{switch.host}:{switch.port}")
        assert pj_lib.wait_until(lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, 8), \
            call.states
        regs = admin.get("/api/v1/customers/acme/registrations").body
        assert {"501410", "501412"} <= {r["user"] for r in regs}
        assert all(r["transport"] == "udp" and r["source"].startswith("127.0.0.1:")
                   for r in regs if r["user"] in ("501410", "501412"))
        users = {u["number"]: u for u in admin.get("/api/v1/customers/acme/users").body}
        assert users["501410"]["registered"] >= 1
        active = admin.get("/api/v1/customers/acme/active-calls").body
        mine = [x for x in active if x["caller"] == "501410" and x["callee"] == "501412"]
        assert len(mine) == 1 and mine[0]["state"] == "answered", active
        assert admin.get("/api/v1/customers/globex/active-calls").status == 404
        assert admin.request("DELETE", "/api/v1/customers/acme/active-calls/nope").status == 404
        gone = admin.request("DELETE", f"/api/v1/customers/acme/active-calls/{mine[0]['id']}")
        assert gone.status == 204
        assert pj_lib.wait_until(lambda: call.state == DISCONNECTED, 5), call.states
        assert all(x["id"] != mine[0]["id"] for x in
                   admin.get("/api/v1/customers/acme/active-calls").body)
        audit = op.get("/api/v1/audit?customer=acme").body
        assert any(e["action"] == "call.hang_up" and e["target"] == mine[0]["id"]
                   for e in audit)
    finally:
        pj_lib.ep.hangupAllCalls()
        pj_lib.wait_until(lambda: False, 0.3)
        a.shutdown()
        c.shutdown()


def test_site_bundle_usage(op: ApiClient) -> None:
    got = op.get("/api/v1/customers/acme/sites/01/bundle")
    assert got.status == 200, got.body
    rating = yaml.safe_load((REPO / "config" / "rating.yaml").read_text(encoding="utf-8"))
    assert got.body["active_users"] >= 3  # calling and suite users of site 01
    assert got.body["size_seconds"] > 0 and got.body["size_seconds"] % 60 == 0
    assert 0 <= got.body["used_seconds"] <= got.body["size_seconds"] or \
        got.body["used_percent"] >= 100
    assert len(got.body["month"]) == 7 and rating
    assert op.get("/api/v1/customers/acme/sites/99/bundle").status == 404


def test_user_changes_its_voicemail_pin(switch: RunningSwitch, base: ApiClient) -> None:
    import asyncio
    import time

    from sqlalchemy import select

    from switch.storage.cli import database_url
    from switch.storage.engine import create_engine
    from switch.storage.voicemail import MailboxRow
    from voicemail.pin import verify_pin

    alice = base.login("501410", "demo-501410")
    assert alice.put("/api/v1/me/voicemail/pin", {"pin": "12"}).status == 422
    assert alice.put("/api/v1/me/voicemail/pin", {"pin": "2468"}).status == 204
    bruno = base.login("501411", "demo-501411")  # no mailbox: nothing to change
    assert bruno.put("/api/v1/me/voicemail/pin", {"pin": "2468"}).status == 404

    async def stored() -> str | None:
        engine = create_engine(database_url(str(switch.data_dir)))
        try:
            async with engine.connect() as conn:
                return (await conn.execute(select(MailboxRow.pin_hash).where(
                    MailboxRow.owner == "acme:501410"))).scalar_one_or_none()
        finally:
            await engine.dispose()

    end = time.monotonic() + 5
    while True:  # the row is created in the background on first use
        pin_hash = asyncio.run(stored())
        if pin_hash is not None and verify_pin("2468", pin_hash):
            break
        assert time.monotonic() < end, pin_hash
        time.sleep(0.1)


def test_user_uploads_a_greeting(switch: RunningSwitch, base: ApiClient) -> None:
    import wave

    alice = base.login("501410", "demo-501410")
    put = alice.request("PUT", "/api/v1/me/voicemail/greetings/busy", raw=_wav(1.0),
                        content_type="audio/wav")
    assert put.status == 204, put.body
    assert alice.request("PUT", "/api/v1/me/voicemail/greetings/busy", raw=b"junk" * 50,
                         content_type="audio/wav").status == 422
    assert alice.request("PUT", "/api/v1/me/voicemail/greetings/other", raw=_wav(1.0),
                         content_type="audio/wav").status == 422
    stored = list(switch.data_dir.rglob("greeting-busy.wav"))
    assert len(stored) == 1 and "501410" in str(stored[0])
    with wave.open(str(stored[0])) as w:  # decoded once: what the phone menu records
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
        assert abs(w.getnframes() / 8000 - 1.0) < 0.05


def test_directory_of_a_customer(op: ApiClient) -> None:
    sites = {s["code"]: s for s in op.get("/api/v1/customers/acme/sites").body}
    assert set(sites) == {"01", "02"} and sites["01"]["queues"] == 1
    groups = op.get("/api/v1/customers/acme/hunt-groups").body
    assert [(g["number"], g["members"]) for g in groups] == [("501401", ["501410", "501412"])]
    attendants = op.get("/api/v1/customers/acme/auto-attendants").body
    assert attendants and attendants[0]["number"] == "501400" and attendants[0]["keys"]
    queue = op.get("/api/v1/customers/acme/queues/support").body
    assert queue["number"] == "501402" and {a["number"] for a in queue["agents"]} == {
        "501410", "501412"}
    assert op.get("/api/v1/customers/globex/hunt-groups").body == []
    assert op.get("/api/v1/customers/globex/queues/support").status == 404
