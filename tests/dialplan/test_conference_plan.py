"""Conference rooms and personal conference PINs in the plan (issue 16): validated with
file, line and field; the conference, park and pickup codes route as features."""

from __future__ import annotations

import datetime as dt

import pytest

from dialplan import (
    CallContext,
    ConfigError,
    ConfigIssue,
    DecisionKind,
    Plan,
    load_plan_data,
    parse_yaml_text,
    route,
)

PLAN = """\
customers:
  - id: acme
    sip_domain: acme.example
    trunks:
      - {id: carrier, host: 127.0.0.1, port: 5090, trusted: ["127.0.0.1"]}
    conference_rooms:
      - {number: "800", name: Crise, pin: "4321", owner: "501410"}
      - {number: "801"}
    sites:
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
        users:
          - {name: A, number: "+33562070410", pack: calling}
          - {name: C, number: "+33562070412", pack: suite, conference_pin: "2468"}
          - {name: W, number: "+33562070420", pack: workspace}
"""


def _load(text: str) -> Plan:
    return load_plan_data(parse_yaml_text(text, "conf.yaml"))


def _issues(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as exc:
        _load(text)
    return exc.value.issues


def test_rooms_and_pins_load() -> None:
    c = _load(PLAN).customers[0]
    assert c.conference_rooms["800"].pin == "4321"
    assert c.conference_rooms["800"].owner == "501410"
    assert c.conference_rooms["801"].pin is None
    assert c.by_full_number["501412"].conference_pin == "2468"  # type: ignore[union-attr]


@pytest.mark.parametrize(("old", "new", "field", "words"), [
    ('pin: "4321"', 'pin: "12"', "pin", "4 to 8 digits"),
    ('owner: "501410"', 'owner: "501499"', "owner", "no user"),
    ('{number: "801"}', '{number: "800"}', "number", "defined twice"),
    ('{number: "801"}', '{number: "80x"}', "number", "1 to 6 digits"),
    ('{number: "801"}', '{number: "801", color: red}', "color", "unknown"),
    ('pack: workspace}', 'pack: workspace, conference_pin: "1234"}', "conference_pin",
     "suite"),
])
def test_bad_fields_name_file_line_and_field(old: str, new: str, field: str,
                                             words: str) -> None:
    text = PLAN.replace(old, new)
    issues = _issues(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if new in ln)
    found = [i for i in issues if i.field.endswith(field)]
    assert found, issues
    assert found[0].file == "conf.yaml" and found[0].line == line, found
    assert words in found[0].message.lower() or words in found[0].message, found


@pytest.mark.parametrize(("dialed", "feature", "argument"), [
    ("*71800", "conference_room", "800"),
    ("*72", "personal_conference", None),
    ("*72412", "personal_conference", "412"),
    ("*68", "call_park", None),
    ("*881", "call_park_retrieve", "1"),
    ("*8", "group_pickup", None),
    ("*87412", "directed_pickup", "412"),
    ("*3", "three_way", None),
])
def test_default_codes_route_as_features(dialed: str, feature: str,
                                         argument: str | None) -> None:
    plan = _load(PLAN)
    caller = plan.user_by_full_number("501412")
    d = route(plan, CallContext(caller, None, f"sip:{dialed}@acme.example",
                                dt.datetime.now(dt.UTC)))
    assert (d.kind, d.feature, d.argument) == (DecisionKind.FEATURE, feature, argument)


def test_the_workspace_pack_has_no_conference_and_no_pickup() -> None:
    plan = _load(PLAN)
    caller = plan.user_by_full_number("501420")
    for dialed in ("*71800", "*8", "*68"):
        d = route(plan, CallContext(caller, None, f"sip:{dialed}@acme.example",
                                    dt.datetime.now(dt.UTC)))
        assert (d.kind, d.status) == (DecisionKind.REJECT, 403), dialed


def test_retrieve_needs_its_orbit() -> None:
    plan = _load(PLAN)
    caller = plan.user_by_full_number("501410")
    d = route(plan, CallContext(caller, None, "sip:*88@acme.example", dt.datetime.now(dt.UTC)))
    assert (d.kind, d.status) == (DecisionKind.REJECT, 484)
