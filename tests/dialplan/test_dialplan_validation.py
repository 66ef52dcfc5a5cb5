"""Broken plans are refused with every error at once, each naming file, line and field."""

from __future__ import annotations

import textwrap

import pytest

from dialplan import ConfigError, ConfigIssue, load_plan_data, parse_yaml_text
from dialplan.packs import Pack

HA1_MD5 = "0" * 32
HA1_SHA = "a" * 64


def _issues(text: str) -> list[ConfigIssue]:
    src = parse_yaml_text(textwrap.dedent(text), "broken.yaml")
    with pytest.raises(ConfigError) as exc:
        load_plan_data(src)
    return exc.value.issues


def _line(text: str, marker: str) -> int:
    """1-based line of the first line containing `marker` (a `# <-` comment in the YAML)."""
    for i, line in enumerate(textwrap.dedent(text).splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError(marker)


HEADER = """\
switch:                          # owned by the switch settings; ignored here
  sip: {listen: "127.0.0.1:5060"}
customers:
  - id: acme
    sip_domain: acme.example
    trunks:
      - {id: carrier, host: 127.0.0.1, port: 5090, trusted: ["127.0.0.1"]}
"""

SITE_01 = """\
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
        short_dialing: true
"""


def test_valid_minimal_plan_loads_and_ignores_switch_key() -> None:
    text = HEADER + "    sites:\n" + SITE_01 + """\
        users:
          - {name: A, number: "+33562070410", pack: calling}
"""
    plan = load_plan_data(parse_yaml_text(text, "ok.yaml"))
    user = plan.user_by_full_number("501410")
    assert user is not None and user.pack is Pack.CALLING and user.sip.username == "501410"
    assert user.sip.realm == "acme.example"


BROKEN = HEADER + """\
    sites:
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
        short_dialing: true
        users:
          - {name: A, number: "+33562070410", pack: calling}
          - {name: B, number: "+33562080410", pack: calling}     # <- dup-ext (and out of range)
          - {name: C, number: "+3356207", pack: calling}          # <- bad-number
          - {name: D, number: "+33562070410", extension: "420", pack: suite}  # <- dup-number
          - {name: E, number: "+33562070430", pack: calling, barring: vip}   # <- no-profile
          - {name: F, number: "+33562070440", pack: workspace, voicemail: true}  # <- ws-voicemail
          - {name: G, number: "+33562070450", pack: workspace, devices: 2}   # <- ws-devices
          - {name: H, number: "+33562070460", pack: workspace, features: [dnd]}  # <- ws-dnd
          - {name: I, number: "+33562070112", pack: calling}     # <- short-emergency
          - {name: J, number: "+33562070470", pack: gold}        # <- bad-pack
          - name: K
            number: "+33562070480"
            pack: calling
            sip: {ha1_md5: "xyz"}                                # <- bad-ha1
          - name: L
            number: "+33562070490"
            pack: calling
            sip: {password: "secret"}                            # <- plaintext
        hunt_groups:
          - id: sales
            extension: "401"
            members: ["501410", "501999"]                        # <- dangling-member
            closed: "voicemail:501440"                           # <- vm-no-pack
        trunk_typo: x                                            # <- unknown-field
      - code: "1"                                                # <- short-code
        address: {street: Rue B, number: "2", postal_code: "35000", city: Rennes}
        trunk: nowhere                                           # <- dangling-trunk
      - code: "01"                                               # <- dup-code
        address: {street: Rue C, number: "3", postal_code: "35000", city: Rennes}
        trunk: carrier
      - code: "04"                                               # <- no-address
        trunk: carrier
      - code: "03"
        trunk: carrier
        address: {street: Rue D, number: "4", postal_code: "35000", city: Rennes}
        numbers: ["+33562070450-+33562070460"]                   # <- overlap
"""

EXPECTED = [
    ("dup-ext", "extension 410 of site 01 already used"),
    ("dup-ext", "not in the numbers of site 01"),
    ("bad-number", "not a valid E.164"),
    ("dup-number", "already assigned"),
    ("no-profile", "no barring profile 'vip'"),
    ("ws-voicemail", "pack workspace has no voicemail"),
    ("ws-devices", "allows 1 device"),
    ("ws-dnd", "does not include dnd"),
    ("short-emergency", "collides with emergency number 112"),
    ("bad-pack", "unknown value 'gold'"),
    ("bad-ha1", "32 hexadecimal digits"),
    ("plaintext", "plaintext passwords are refused"),
    ("dangling-member", "no user with internal number '501999'"),
    ("vm-no-pack", "has no voicemail"),
    ("unknown-field", "unknown field"),
    ("short-code", "must be 2 digits"),
    ("dangling-trunk", "no trunk with id 'nowhere'"),
    ("dup-code", "site code 01 already used"),
    ("overlap", "overlap"),
    ("no-address", "civic address for emergency calls"),
]


def test_broken_plan_reports_every_error_with_its_line() -> None:
    issues = _issues(BROKEN)
    rendered = [str(i) for i in issues]
    for marker, words in EXPECTED:
        line = _line(BROKEN, f"# <- {marker}")
        hits = [i for i in issues if i.line == line and words in i.message]
        assert hits, f"no issue at line {line} ({marker}: {words}); got:\n" + "\n".join(rendered)
    # One line per error, in the `file:line: field: message` shape.
    for i, text in zip(issues, rendered, strict=True):
        assert text.startswith(f"broken.yaml:{i.line}: {i.field}: ")
    assert [i.line for i in issues] == sorted(i.line for i in issues)


def test_field_paths_name_the_yaml_location() -> None:
    issues = _issues(BROKEN)
    fields = {i.field for i in issues}
    assert "customers[0].sites[0].users[1].extension" not in fields  # derived, so on `number`
    assert "customers[0].sites[0].users[1].number" in fields
    assert "customers[0].sites[1].code" in fields
    assert "customers[0].sites[0].users[10].sip.ha1_md5" in fields


@pytest.mark.parametrize(
    ("prefix_line", "words"),
    [
        ('    prefix: "0"', "national numbers"),
        ('    prefix: "1"', "emergency number"),
        ('    prefix: "3"', "service numbers"),
        ('    prefix: "55"', "one digit"),
        ('    prefix: "*"', "one digit"),
    ],
)
def test_prefix_colliding_with_external_numbers(prefix_line: str, words: str) -> None:
    text = HEADER + prefix_line + "  # <- prefix\n    sites:\n" + SITE_01
    issues = _issues(text)
    assert [(i.line, i.field) for i in issues] == [(_line(text, "# <- prefix"), "customers[0].prefix")]
    assert words in issues[0].message


@pytest.mark.parametrize(
    ("extra", "user", "words"),
    [
        ('    outside_line_digit: "1"  # <- x\n', None, "starts an emergency number"),
        ('    outside_line_digit: "5"  # <- x\n', None, "equals the internal prefix"),
        ('    outside_line_digit: "0"\n', '{name: A, number: "+33562070410", extension: "012", pack: calling}  # <- x',
         "outside-line digit"),
        ("", '{name: A, number: "+33562073639", extension: "3639", pack: calling}  # <- x', "must be 3 digits"),
        ('    extension_length: 4\n', '{name: A, number: "+33562073639", pack: calling}  # <- x',
         "short service number 3639"),
        ('    site_code_length: 5  # <- x\n', None, "between 1 and 4"),
        ('    extension_length: 5  # <- x\n', None, "between 3 and 4"),
        ('    feature_codes: {"*21": forward_always_on, "*210": dnd_on}  # <- x\n', None, "starts with *21"),
        ('    feature_codes: {"43": echo_test}  # <- x\n', None, "must be * or #"),
        ('    feature_codes: {"*43": coffee}  # <- x\n', None, "unknown feature"),
        ('    country: XX  # <- x\n', None, "unknown country"),
        ('    barring_profiles: [{id: p, allow: [moon]}]  # <- x\n', None, "unknown call category"),
    ],
)
def test_customer_level_errors(extra: str, user: str | None, words: str) -> None:
    body = HEADER + extra + "    sites:\n" + SITE_01
    if user is not None:
        body += "        users:\n          - " + user + "\n"
    issues = _issues(body)
    line = _line(body, "# <- x")
    assert any(i.line == line and words in i.message for i in issues), [str(i) for i in issues]


def test_yaml_number_instead_of_string_is_explained() -> None:
    text = HEADER + "    sites:\n" + SITE_01.replace('code: "01"', "code: 01  # <- x")
    issues = _issues(text)
    assert any(i.line == _line(text, "# <- x") and "quoted string" in i.message for i in issues)


def test_duplicate_domain_across_customers() -> None:
    second = HEADER.split("customers:\n", 1)[1].replace("id: acme", "id: other")
    text = HEADER + "    sites:\n" + SITE_01 + second.replace(
        "sip_domain: acme.example", "sip_domain: acme.example  # <- x"
    ) + "    sites:\n" + SITE_01.replace("+33562070400-+33562070499", "+33223280400-+33223280499")
    issues = _issues(text)
    assert any(i.line == _line(text, "# <- x") and "already belongs" in i.message for i in issues)


def test_dangling_schedule_and_target_references() -> None:
    text = HEADER + "    sites:\n" + SITE_01 + """\
        users:
          - {name: A, number: "+33562070410", pack: calling}
        auto_attendants:
          - id: reception
            extension: "400"
            schedule: nine-to-five            # <- sched
            menu: {"1": "501999", "x": "501410"}  # <- menu
            timeout: "501777"                 # <- timeout
"""
    issues = _issues(text)
    lines = {i.line: i.message for i in issues}
    assert "no schedule" in lines[_line(text, "# <- sched")]
    assert _line(text, "# <- menu") in lines
    assert "no target '501777'" in lines[_line(text, "# <- timeout")]


def test_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_yaml_text("customers:\n  - id: [unclosed\n", "bad.yaml")
    assert exc.value.issues[0].line >= 2
