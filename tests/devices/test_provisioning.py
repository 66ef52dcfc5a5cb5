"""Provisioning without sockets: activation codes, MACs and vendors, the template language,
every model's template, generated credentials, DECT handset slots, the account lookup of
provisioned devices, and the repository's single-use claim on SQLite."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from devices.accounts import ha1
from devices.dect import HandsetError, assign_handsets, assign_lines, group_bases
from devices.location import Binding
from devices.provisioning import (
    ClaimError,
    Colleague,
    DeviceConfig,
    LineConfig,
    TemplateError,
    check_claim,
    code_hash,
    display_code,
    generate_credential,
    language_for_country,
    mac_from_path,
    mac_from_user_agent,
    new_activation_code,
    new_code_record,
    normalize_code,
    read_catalog,
    read_template,
    render,
    template_values,
    utc_offset,
)

NOW = 1_800_000_000.0  # 2027-01-15, winter time in Paris


# -- activation codes --

def test_codes_are_16_digits_random_and_shown_grouped() -> None:
    codes = {new_activation_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(re.fullmatch(r"\d{16}", c) for c in codes)
    assert display_code("1234567890123456") == "1234-5678-9012-3456"
    assert normalize_code("1234-5678 9012 3456") == "1234567890123456"
    for bad in ("123456789012345", "12345678901234567", "123456789012345a", "", None,
                "\uff11" * 16):  # full-width digits are not ASCII digits
        assert normalize_code(bad) is None


def test_only_the_hash_is_kept_and_a_code_is_claimed_once_before_it_expires() -> None:
    code, record = new_code_record("acme", "501412", "acme:501412", NOW)
    assert record.code_hash == code_hash(code) and code not in repr(record)
    assert record.expires_at == NOW + 7 * 86_400
    assert check_claim(record, NOW + 10) is record
    with pytest.raises(ClaimError) as unknown:
        check_claim(None, NOW)
    assert unknown.value.status == 404
    with pytest.raises(ClaimError) as expired:
        check_claim(record, record.expires_at)
    assert (expired.value.status, expired.value.reason) == (410, "activation code expired")
    from dataclasses import replace

    used = replace(record, claimed_mac="00:15:65:aa:bb:cc", claimed_at=NOW)
    with pytest.raises(ClaimError) as again:
        check_claim(used, NOW + 1)
    assert (again.value.status, again.value.reason) == (410, "activation code already used")
    with pytest.raises(ValueError):
        new_code_record("acme", "501412", "acme:501412", NOW, ttl=0)


# -- MACs and vendors --

@pytest.mark.parametrize("name,mac", [
    ("001565aabbcc.cfg", "00:15:65:aa:bb:cc"),
    ("001565AABBCC-phone.cfg", "00:15:65:aa:bb:cc"),
    ("spa000e08112233.xml", "00:0e:08:11:22:33"),
    ("cfg000b82aabbcc.xml", "00:0b:82:aa:bb:cc"),
    ("y000000000028.cfg", None),  # Yealink's common file: no MAC (12 digits, all zero)
    ("0015651234567.cfg", None),  # 13 hex digits: not a MAC
    ("activate", None),
    ("010203040506.cfg", None),  # multicast bit set
])
def test_mac_from_the_requested_file_name(name: str, mac: str | None) -> None:
    assert mac_from_path(name) == mac


def test_mac_from_the_user_agent() -> None:
    assert mac_from_user_agent("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc") == \
        "00:15:65:aa:bb:cc"
    assert mac_from_user_agent("Cisco/SPA504G-7.6.2c (000E08112233)") == "00:0e:08:11:22:33"
    assert mac_from_user_agent("Yealink SIP-T46S 66.86.0.15") is None


@pytest.mark.parametrize("user_agent,mac,template", [
    ("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc", None, "yealink-t4x-t5x"),
    ("Yealink SIP-T54W 96.86.0.70", None, "yealink-t4x-t5x"),
    ("Yealink W60B 77.85.0.20", None, "yealink-w-dect"),
    ("Yealink W70B 146.85.0.20", None, "yealink-w-dect"),
    ("PolycomVVX-VVX_450-UA/6.4.3.5018", None, "poly-vvx-edge"),
    ("PolyEdge-Edge_E450-UA/8.0.2.3267", None, "poly-vvx-edge"),
    ("Cisco/SPA504G-7.6.2c (0011223344AA)", None, "cisco-spa-68xx"),
    ("Cisco-CP6841-3PCC/11.3.1 (00ab11223344)", None, "cisco-spa-68xx"),
    ("Gigaset N510 IP PRO/42.250.00.000.000", None, "gigaset-n-dect"),
    ("snomD785/10.1.46.16", None, "snom-d"),
    ("Grandstream GRP2612 1.0.5.67", None, "grandstream-grp"),
    ("Wget/1.21", "00:15:65:01:02:03", "yealink-t4x-t5x"),  # only the OUI is known
    ("Wget/1.21", "7c:2f:80:01:02:03", "gigaset-n-dect"),
    ("Wget/1.21", "00:11:22:33:44:55", None),  # an unknown vendor gets nothing
    ("baresip v1.0.0 (x86_64/linux)", None, None),  # a softphone: no template
])
def test_the_catalog_chooses_a_template_by_model_then_by_oui(
        user_agent: str, mac: str | None, template: str | None) -> None:
    chosen = read_catalog().choose(user_agent, mac)
    assert (chosen.name if chosen else None) == template


# -- the template language --

def test_render_repeats_keeps_and_escapes() -> None:
    text = ("@format xml\n#@ a comment\n<a n=\"${name}\">\n@each items\n  <i k=\"${k}\"/>\n"
            "@end\n@if flag\n  <f/>\n@end\n@if empty\n  <never/>\n@end\n</a>")
    out = render(text, {"name": 'A & "B" <c>', "items": [{"k": "1"}, {"k": "2"}],
                        "flag": "1", "empty": ""})
    assert out == ('<a n="A &amp; &quot;B&quot; &lt;c&gt;">\n  <i k="1"/>\n  <i k="2"/>\n'
                   '  <f/>\n</a>\n')


def test_a_value_cannot_add_a_line_to_a_text_configuration() -> None:
    out = render("label = ${name}", {"name": "Alice\naccount.1.password = x\r"})
    assert out.count("\n") == 1 and out.startswith("label = Alice account.1.password")


@pytest.mark.parametrize("text,error", [
    ("@each x\nno end", "no @end"),
    ("@end", "without"),
    ("${missing}", "placeholder"),
    ("@format yaml\n", "unknown @format"),
    ("@each name\n@end", "not a list"),
])
def test_template_mistakes_are_named(text: str, error: str) -> None:
    with pytest.raises(TemplateError, match=error):
        render(text, {"name": "x"})


def _config(password: str | None, lines: int = 1) -> DeviceConfig:
    return DeviceConfig(
        mac="00:15:65:aa:bb:cc", server="sip.example.net", port=5060, transport="UDP",
        domain="acme.wte.example", timezone="Europe/Paris", language="fr",
        lines=tuple(LineConfig(i, f"50141{i}", f"Line {i} & co", f"dabc{i}",
                               None if password is None else f"{password}{i}")
                    for i in range(1, lines + 1)),
        colleagues=(Colleague("501420", "Salle <Garonne>"),), voicemail_code="*86",
        firmware_url="http://fw.example.net/t46s.rom")


@pytest.mark.parametrize("template", [t.name for t in read_catalog().templates])
def test_every_template_renders_the_line_server_zone_and_password_only_when_given(
        template: str) -> None:
    entry = next(t for t in read_catalog().templates if t.name == template)
    text = read_template(entry.file)
    lines = 3 if entry.dect else 1
    body = render(text, template_values(_config("S3cret", lines), NOW))
    for i in range(1, lines + 1):
        assert f"50141{i}" in body and f"dabc{i}" in body and f"S3cret{i}" in body
    assert "sip.example.net" in body and "5060" in body
    assert "Europe/Paris" in body or "+1" in body or "3600" in body
    assert "fw.example.net" in body
    if entry.content_type == "application/xml":
        ET.fromstring(body.split("\n", 1)[1] if body.startswith("<?xml") else body)
    without = render(text, template_values(_config(None, lines), NOW))
    assert "S3cret" not in without and "dabc1" in without


def test_language_and_time_zone_offsets() -> None:
    assert language_for_country("FR") == "fr" and language_for_country("ZZ") == "en"
    assert utc_offset("Europe/Paris", NOW) == "+1"
    assert utc_offset("Europe/Paris", NOW + 180 * 86_400) == "+2"  # summer time
    assert utc_offset("Asia/Kolkata", NOW) == "+5:30"
    assert utc_offset("America/New_York", NOW) == "-5"


# -- credentials and handsets --

def test_generated_credentials_keep_only_digests() -> None:
    cred, password = generate_credential("acme.wte.example", "acme:501412",
                                         "00:15:65:aa:bb:cc", 1, NOW)
    assert re.fullmatch(r"d[0-9a-f]{12}", cred.username)
    assert len(password) == 24 and password.isalnum()
    assert cred.ha1_md5 == ha1(cred.username, "acme.wte.example", password, "MD5")
    assert cred.ha1_sha256 == ha1(cred.username, "acme.wte.example", password, "SHA-256")
    assert password not in repr(cred)
    other, other_password = generate_credential("acme.wte.example", "acme:501412",
                                                "00:15:65:aa:bb:cc", 2, NOW)
    assert other.username != cred.username and other_password != password


def test_handsets_take_the_lowest_free_slots_up_to_the_base_capacity() -> None:
    assert assign_handsets([], 3, 6) == [1, 2, 3]
    assert assign_handsets([1, 3], 2, 6) == [2, 4]
    with pytest.raises(HandsetError) as full:
        assign_handsets([1, 2, 3, 4, 5], 2, 6)
    assert full.value.status == 409


def test_lines_keep_their_slot_when_a_device_claims_them_again() -> None:
    base = [("acme:501410", 1), ("acme:501411", 2)]
    # a new handset takes the lowest free slot, nothing is replaced
    assert assign_lines(base, ["acme:501412"], 6) == ([3], set())
    # a line the base already serves gets a new credential in its slot
    assert assign_lines(base, ["acme:501411", "acme:501412"], 6) == ([2, 3], {2})
    # a desk phone (one line) is reassigned whole, whoever it served
    assert assign_lines([("acme:501410", 1)], ["acme:501420"], 1) == ([1], {1})
    assert assign_lines([], ["acme:501420"], 1) == ([1], set())
    with pytest.raises(HandsetError):
        assign_lines([], ["acme:501410", "acme:501411"], 1)
    with pytest.raises(HandsetError):
        assign_lines(base, ["acme:501412", "acme:501420"], 3)


def _binding(aor: str, contact: str, port: int, ua: str = "Gigaset N510 IP PRO/42") -> Binding:
    return Binding(aor, contact, NOW + 300, 1.0, f"cid-{aor}", 1, None, None, "udp",
                   "203.0.113.7", port, None, ua, NOW)


def test_bindings_seen_as_bases_and_handsets() -> None:
    bases = group_bases([
        _binding("acme:501410", "sip:hs1@192.168.1.50", 5060),
        _binding("acme:501411", "sip:hs2@192.168.1.50", 5060),
        _binding("acme:501412", "sip:501412@192.168.1.60", 5062, "Yealink SIP-T46S 66"),
    ])
    assert len(bases) == 1
    assert [h.aor for h in bases[0].handsets] == ["acme:501410", "acme:501411"]
    assert (bases[0].host, bases[0].port) == ("203.0.113.7", 5060)


# -- the account lookup --

def test_a_provisioned_credential_authenticates_as_the_users_line() -> None:
    from dialplan import PlanHolder
    from dialplan.loader import load_plan_data
    from dialplan.yamlsource import load_yaml_file
    from switch.services.plan import PlanAccounts

    repo = Path(__file__).resolve().parents[2]
    accounts = PlanAccounts(PlanHolder(load_plan_data(load_yaml_file(
        repo / "config" / "example.yaml"))))
    user = accounts.find("501420", "acme.wte.example")
    assert user is not None
    cred, password = generate_credential("acme.wte.example", user.aor, "00:15:65:aa:bb:cc",
                                         1, NOW)
    assert accounts.find(cred.username, "acme.wte.example") is None
    accounts.add_device_credentials([cred])
    device = accounts.find(cred.username, "acme.wte.example")
    assert device is not None
    # the user's SIP name (the To of its REGISTER), the device's own digests, the line's
    # AOR and the pack's device limit (a Workspace: one device)
    assert (device.username, device.aor, device.max_contacts) == ("501420", user.aor, 1)
    assert device.ha1_md5 == ha1(cred.username, "acme.wte.example", password, "MD5")
    assert device.ha1_md5 != user.ha1_md5
    assert accounts.find(cred.username, "other.realm") is None
    # the user's own account is untouched
    assert accounts.find("501420", "acme.wte.example") == user


# -- the repository (SQLite) --

def test_the_repository_claims_a_code_once_and_stores_digests(tmp_path: Path) -> None:
    from switch.storage.cli import database_url, db_upgrade
    from switch.storage.engine import create_engine
    from switch.storage.provisioning import SqlProvisioningRepository

    url = database_url(str(tmp_path))
    db_upgrade(url)

    async def scenario() -> None:
        engine = create_engine(url)
        repo = SqlProvisioningRepository(engine)
        try:
            code, record = new_code_record("acme", "501412", "acme:501412", NOW, ttl=60)
            await repo.add_code(record)
            assert await repo.get_code(code_hash(code)) == record
            cred, _ = generate_credential("acme.wte.example", "acme:501412",
                                          "00:15:65:aa:bb:cc", 1, NOW)
            # too late: refused, nothing stored
            assert not await repo.claim([record.code_hash], "00:15:65:aa:bb:cc", NOW + 60,
                                        [cred])
            assert await repo.credentials() == []
            assert await repo.claim([record.code_hash], "00:15:65:aa:bb:cc", NOW + 1, [cred])
            assert await repo.credentials_for_mac("00:15:65:aa:bb:cc") == [cred]
            # a second claim (a racing phone) loses, and stores nothing
            other, _ = generate_credential("acme.wte.example", "acme:501412",
                                           "00:15:65:00:00:01", 1, NOW)
            assert not await repo.claim([record.code_hash], "00:15:65:00:00:01", NOW + 2,
                                        [other])
            assert await repo.credentials() == [cred]
            stored = await repo.get_code(record.code_hash)
            assert stored is not None and stored.claimed_mac == "00:15:65:aa:bb:cc"
            # all or nothing: one used code among fresh ones claims none of them
            fresh_code, fresh = new_code_record("acme", "501410", "acme:501410", NOW)
            await repo.add_code(fresh)
            assert not await repo.claim([fresh.code_hash, record.code_hash],
                                        "7c:2f:80:00:00:01", NOW + 3, [])
            after = await repo.get_code(code_hash(fresh_code))
            assert after is not None and after.claimed_mac is None
        finally:
            await engine.dispose()

    asyncio.run(scenario())
