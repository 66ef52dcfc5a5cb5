"""config/rating.yaml: the 2.6.1 list as data, and errors naming file, line and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dialplan.packs import Pack
from dialplan.yamlsource import ConfigError, parse_yaml_text
from rating.tariff import Increments, NumberKind, load_rating, load_rating_data

from .conftest import RATING_YAML

F, M = NumberKind.FIXED, NumberKind.MOBILE



def _codes(text: str) -> list[str]:
    return text.split()


# 2.6.1, "Liste des destinations incluses dans le forfait", by ISO 3166 code.
FIXED_AND_MOBILE = _codes(
    "FR RE YT GP BL MF MQ GF "
    "DE AT BE CA DK ES US FI GR IE IT VA LU NO NL PT GB SE CH "
    "BG CY HR EE FO HU IS LV LT MT PL RO SK CZ "
    "CL CO PY PE VE CR GT PR AU KR HK JP MY NZ SG TW TH "
    "SA BD BT BN KH GU ID KW MP MN NP UZ VN NG"
)
FIXED_ONLY = _codes("AD LI AR BR EC UY DZ HN NI PA BH KZ LA LB ZA BW CM MZ SZ")


def test_the_shipped_file_is_the_list_of_2_6_1() -> None:
    cfg = load_rating(RATING_YAML)
    expected = {(c, k) for c in FIXED_AND_MOBILE for k in (F, M)} | {(c, F) for c in FIXED_ONLY}
    assert set(cfg.included) == expected
    assert cfg.minutes_per_user == 500
    assert cfg.packs == frozenset(Pack)
    assert cfg.included_group("RU", F) is None
    assert cfg.zone("RE") == "drom" and cfg.zone("ZZ") == cfg.default_zone
    for zone in {*cfg.zone_of_country.values(), cfg.default_zone}:
        assert cfg.price(zone, F) >= 0 and cfg.price(zone, M) >= 0
    assert cfg.special_range("+33899123456") is not None
    assert cfg.special_range("+33899123456").prefix == "+33899"  # type: ignore[union-attr]
    assert cfg.special_range("118712").name == "renseignements"  # type: ignore[union-attr]


def test_increments() -> None:
    inc = Increments(30, 1)
    assert [inc.billed(s) for s in (0, 1, 30, 31, 125)] == [0, 30, 30, 31, 125]
    assert Increments(60, 60).billed(61) == 120
    assert Increments(30, 10).continued(11) == 20 and inc.continued(0) == 0


BAD = """\
bundle:
  minutes_per_user: -5
  packs: [calling, gold]
included:
  - group: a
    fixed_and_mobile: [FR, XX]
  - group: b
    fixed: [FR]
zones:
  france: [FR]
default_zone: world
tariff:
  increments: {first: 0}
  connection_fee: "-1"
  prices:
    france: {fixed: "0.02"}
    mars: {fixed: "1", mobile: "1"}
special:
  - {prefix: "+33 89", per_minute: "abc"}
"""


def test_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_rating_data(parse_yaml_text(BAD, "rating.yaml"))
    got = {(i.line, i.field) for i in info.value.issues}
    assert {
        (2, "bundle.minutes_per_user"),
        (3, "bundle.packs[1]"),
        (6, "included[0].fixed_and_mobile[1]"),
        (8, "included[1].fixed[0]"),  # FR fixed already in group a
        (13, "tariff.increments.first"),
        (14, "tariff.connection_fee"),
        (15, "tariff.prices"),  # no prices for zone world
        (16, "tariff.prices.france"),  # no mobile price
        (17, "tariff.prices.mars"),
        (19, "special[0].prefix"),
        (19, "special[0].per_minute"),
    } <= got
    assert all(i.file == "rating.yaml" for i in info.value.issues)
    assert str(info.value).startswith("rating.yaml:")


def test_norway_must_be_quoted() -> None:
    text = RATING_YAML.read_text(encoding="utf-8").replace(', "NO", ', ', NO, ', 1)
    with pytest.raises(ConfigError) as info:
        load_rating_data(parse_yaml_text(text, "rating.yaml"))
    assert "boolean" in str(info.value)


def test_amounts_are_decimals() -> None:
    cfg = load_rating(RATING_YAML)
    assert isinstance(cfg.connection_fee, Decimal)
    assert all(isinstance(p, Decimal) for p in cfg.prices.values())
