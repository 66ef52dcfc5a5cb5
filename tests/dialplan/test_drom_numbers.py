"""Numbers of the French overseas departments (DROM) dialed within the French plan.

The expected values come from the public numbering plan as libphonenumber ships it (its
metadata for RE, YT, GP, BL, MF, MQ, GF): every 5-digit block of the DROM fixed and mobile
leading digits is tried, number by number, against every DROM country code, and each number
a DROM range holds must be dialable nationally as 0 + its 9 digits, leave with that code,
be national or mobile for barring, and keep its E.164 as caller-ID.
"""

from __future__ import annotations

import io
from datetime import datetime
from itertools import product

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from dialplan import CallContext, Plan, load_plan_data, parse_yaml_text, route
from dialplan.callerid import decide, normalise
from dialplan.cli import plan_explain
from dialplan.loader import BUILTIN_PROFILES
from dialplan.model import DecisionKind
from dialplan.numbers import (
    DROM_COUNTRY_CODES,
    CallCategory,
    classify_external,
    in_drom_block,
)

from .conftest import EXAMPLE

DROM_REGIONS = ("RE", "YT", "GP", "BL", "MF", "MQ", "GF")
REGION_CODE = {"RE": 262, "YT": 262, "GP": 590, "BL": 590, "MF": 590, "MQ": 596, "GF": 594}
NATIONAL_PROFILE = next(p for p in BUILTIN_PROFILES if p.id == "national")
_CLASS: dict[int, CallCategory] = {PhoneNumberType.FIXED_LINE: CallCategory.NATIONAL,
          PhoneNumberType.MOBILE: CallCategory.MOBILE}


def _drom_numbers() -> list[tuple[str, int, int]]:
    """(9-digit national number, country code, type) of every DROM fixed or mobile number in
    the sample: each 5-digit block under the DROM leading digits, with three endings."""
    out: list[tuple[str, int, int]] = []
    heads = [a + "".join(b) for a in ("26", "59", "63", "69") for b in product("0123456789", repeat=3)]
    heads += ["709" + "".join(b) for b in product("0123456789", repeat=2)]
    for head, tail in product(heads, ("0000", "4567", "9999")):
        nsn = head + tail
        found: list[tuple[int, int]] = []
        for cc in DROM_COUNTRY_CODES:
            num = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
            if phonenumbers.is_valid_number(num):
                found.append((cc, phonenumbers.number_type(num)))
        assert len(found) <= 1, f"{nsn} is held by several DROM codes: {found}"
        if found and found[0][1] in _CLASS:
            out.append((nsn, found[0][0], found[0][1]))
    return out


DROM_NUMBERS = _drom_numbers()


def test_the_sample_covers_every_drom_code_and_type() -> None:
    seen: set[tuple[int, int]] = {(cc, kind) for _, cc, kind in DROM_NUMBERS}
    for cc in DROM_COUNTRY_CODES:
        assert (cc, PhoneNumberType.FIXED_LINE) in seen
        assert (cc, PhoneNumberType.MOBILE) in seen
    assert len(DROM_NUMBERS) > 1000


def test_every_drom_number_dialed_nationally_leaves_with_its_own_code() -> None:
    wrong = []
    for nsn, cc, kind in DROM_NUMBERS:
        cls = classify_external("0" + nsn, "FR")
        expected = (f"+{cc}{nsn}", frozenset({_CLASS[kind]}))
        if (cls.e164, cls.categories) != expected or cls.error is not None:
            wrong.append((nsn, cls, expected))
    assert not wrong, wrong[:5]


def test_every_drom_number_is_national_for_barring_in_every_form() -> None:
    for nsn, cc, _ in DROM_NUMBERS:
        for dialed in (f"0{nsn}", f"+{cc}{nsn}", f"00{cc}{nsn}", f"+33{nsn}"):
            cls = classify_external(dialed, "FR")
            assert cls.e164 == f"+{cc}{nsn}", dialed
            assert CallCategory.INTERNATIONAL not in cls.categories, dialed
            assert not NATIONAL_PROFILE.refused(cls.categories), dialed


def test_metropolitan_numbers_dialed_from_a_drom_stay_plus_33() -> None:
    for region in DROM_REGIONS:
        assert classify_external("0612345678", region).e164 == "+33612345678"
        assert classify_external("0562070410", region).categories == {CallCategory.NATIONAL}


@pytest.mark.parametrize("region", DROM_REGIONS)
@pytest.mark.parametrize("kind", [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE])
def test_example_number_of_each_region(region: str, kind: int) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    nsn = phonenumbers.national_significant_number(example)
    cls = classify_external("0" + nsn, "FR")
    assert cls.e164 == f"+{REGION_CODE[region]}{nsn}"
    assert cls.categories == {_CLASS[kind]}
    assert normalise("0" + nsn, "FR") == cls.e164
    assert normalise("0" + nsn, region) == cls.e164


def test_unallocated_numbers_of_drom_blocks_are_refused_not_sent_as_plus_33() -> None:
    checked = 0
    for head, tail in product(("262", "263", "269", "590", "594", "596", "639", "690",
                               "691", "692", "693", "694", "696", "697"), range(0, 1000, 7)):
        nsn = f"{head}{tail:03d}000"
        if any(phonenumbers.is_valid_number(phonenumbers.PhoneNumber(
                country_code=cc, national_number=int(nsn))) for cc in DROM_COUNTRY_CODES):
            continue
        assert in_drom_block(nsn)
        cls = classify_external("0" + nsn, "FR")
        assert cls.e164 is None and cls.error is not None, nsn
        assert normalise("0" + nsn, "FR") is None, nsn
        checked += 1
    assert checked > 100


def test_france_wide_special_and_non_geographic_numbers_stay_plus_33() -> None:
    assert classify_external("0800123456", "FR").e164 == "+33800123456"
    assert classify_external("0976012345", "FR").e164 == "+33976012345"
    assert classify_external("0976012345", "GP").e164 == "+33976012345"


ISSUE_NUMBERS = [
    ("0262412345", "+262262412345", "national"),
    ("0692123456", "+262692123456", "mobile"),
    ("0590821234", "+590590821234", "national"),
    ("0596701234", "+596596701234", "national"),
    ("0594291234", "+594594291234", "national"),
    ("0269611234", "+262269611234", "national"),
    ("0639012345", "+262639012345", "mobile"),
]


@pytest.mark.parametrize(("dialed", "e164", "category"), ISSUE_NUMBERS)
def test_plan_explain_shows_the_drom_number(dialed: str, e164: str, category: str) -> None:
    out = io.StringIO()
    assert plan_explain(str(EXAMPLE), "501410", dialed, None, out) == 0
    text = out.getvalue()
    assert f"decision: EXTERNAL {e164} via trunk" in text
    assert f"external number {e164} ({category})" in text


@pytest.mark.parametrize(("dialed", "e164", "category"), ISSUE_NUMBERS)
def test_a_national_only_user_may_call_the_drom(
    plan: Plan, dialed: str, e164: str, category: str
) -> None:
    caller = plan.user_by_full_number("501420")  # Salle Garonne, profile "national"
    assert caller is not None and caller.barring.id == "national"
    d = route(plan, CallContext(caller, None, dialed, datetime(2026, 12, 1, 10, 0)))
    assert d.kind is DecisionKind.EXTERNAL, d.trace
    assert d.e164 == e164
    assert d.categories == {CallCategory(category)}
    internal_only = plan.user_by_full_number("501411")
    assert internal_only is not None
    d2 = route(plan, CallContext(internal_only, None, dialed, datetime(2026, 12, 1, 10, 0)))
    assert d2.kind is DecisionKind.REJECT and d2.status == 403


DROM_PLAN = """\
customers:
  - id: ocean
    sip_domain: ocean.example
    trunks:
      - {id: carrier, host: 127.0.0.1, port: 5090, trusted: ["127.0.0.1"]}
    sites:
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
        users:
          - {name: A, number: "+33562070410", pack: calling}
      - code: "02"
        address: {street: Rue de Paris, number: "2", postal_code: "97400", city: Saint-Denis}
        timezone: Indian/Reunion
        numbers: ["+262262410400-+262262410499"]
        trunk: carrier
        users:
          - {name: B, number: "+262262410410", pack: calling}
"""


@pytest.fixture(scope="module")
def drom_plan() -> Plan:
    return load_plan_data(parse_yaml_text(DROM_PLAN, "drom.yaml"))


def test_a_carrier_may_send_a_drom_number_in_national_form(drom_plan: Plan) -> None:
    trunk = drom_plan.trunk_for_address("127.0.0.1", 5090)
    at = datetime(2026, 12, 1, 10, 0)
    for called in ("0262410410", "+262262410410", "262262410410"):
        d = route(drom_plan, CallContext(None, trunk, called, at))
        assert d.kind is DecisionKind.USER, (called, d.trace)
        assert d.e164 == "+262262410410"


def test_own_drom_numbers_dialed_nationally_stay_on_net(drom_plan: Plan) -> None:
    paris = drom_plan.user_by_full_number("501410")
    assert paris is not None
    d = route(drom_plan, CallContext(paris, None, "0262410410", datetime(2026, 12, 1, 10, 0)))
    assert d.kind is DecisionKind.USER and d.e164 == "+262262410410", d.trace
    d = route(drom_plan, CallContext(paris, None, "0262410499", datetime(2026, 12, 1, 10, 0)))
    assert d.kind is DecisionKind.REJECT and d.status == 404  # in the block, not assigned


def test_caller_id_of_a_drom_user(drom_plan: Plan) -> None:
    user = drom_plan.user_by_full_number("502410")
    assert user is not None
    assert decide(user, "0262410411").number == "+262262410411"  # own block, national form
    assert not decide(user, "0262410411").replaced
    assert not decide(user, "+33562070411").replaced  # another site's block, the customer's
    assert decide(user, "0262999999").replaced  # not the customer's
