"""A plan with an outside-line digit: external numbers need it, emergency works either way."""

from __future__ import annotations

from datetime import datetime

import pytest

from dialplan import CallContext, DecisionKind, Plan, load_plan_data, parse_yaml_text, route

from .conftest import EXAMPLE


@pytest.fixture(scope="module")
def plan0() -> Plan:
    text = EXAMPLE.read_text().replace('    prefix: "5"\n', '    prefix: "5"\n    outside_line_digit: "0"\n')
    return load_plan_data(parse_yaml_text(text, "outside.yaml"))


@pytest.mark.parametrize(
    ("dialed", "kind", "value"),
    [
        ("0112", DecisionKind.EMERGENCY, "112"),
        ("112", DecisionKind.EMERGENCY, "112"),
        ("sip:018@x.example;user=phone", DecisionKind.EMERGENCY, "18"),
        ("00612345678", DecisionKind.EXTERNAL, "+33612345678"),
        ("000442079460958", DecisionKind.EXTERNAL, "+442079460958"),
        ("+33612345678", DecisionKind.EXTERNAL, "+33612345678"),  # E.164 needs no outside digit
        ("00562070411", DecisionKind.USER, "501411"),  # own number, kept on-net
        ("501411", DecisionKind.USER, "501411"),
        ("0612345678", DecisionKind.REJECT, "484"),  # outside digit eaten: 612345678 is not valid
    ],
)
def test_outside_line_digit(plan0: Plan, dialed: str, kind: DecisionKind, value: str) -> None:
    user = plan0.user_by_full_number("501410")
    d = route(plan0, CallContext(user, None, dialed, datetime(2026, 6, 1, 12)))
    assert d.kind is kind, d.trace
    got = {
        DecisionKind.EMERGENCY: d.number,
        DecisionKind.EXTERNAL: d.e164,
        DecisionKind.USER: getattr(d.target, "full_number", None),
        DecisionKind.REJECT: str(d.status),
    }[kind]
    assert got == value
