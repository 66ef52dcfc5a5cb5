"""The minute bundle, its included destinations and the tariff sheet, loaded from YAML.

Service description 2.6.1 ("Forfait de communications"): 500 minutes per user and calendar
month, pooled per site, towards a list of destinations given by country and by fixed or
mobile numbers; everything else, and everything past the pool, is charged per destination
"comme indiqué dans la Fiche Tarifaire". That list and that sheet are data
(`config/rating.yaml`); this module reads them, and a bad file fails at load with the file,
line and field of every problem (like the dialplan's ConfigError).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any

import phonenumbers

from dialplan.fields import Reader
from dialplan.packs import Pack
from dialplan.yamlsource import ConfigError, PathKey, YamlSource, load_yaml_file


class NumberKind(Enum):
    """What 2.6.1 tells apart: fixed ("fixes") and mobile numbers; the rest is special."""

    FIXED = "fixed"
    MOBILE = "mobile"
    SPECIAL = "special"  # toll-free, premium, shared cost, short numbers...


@dataclass(frozen=True, slots=True)
class Increments:
    """Billing increments: `first` seconds due once the call is answered, then `then`."""

    first: int
    then: int

    def billed(self, seconds: int) -> int:
        """Seconds billed for a call of `seconds` answered seconds (0 for none)."""
        if seconds <= 0:
            return 0
        if seconds <= self.first:
            return self.first
        return self.first + math.ceil((seconds - self.first) / self.then) * self.then

    def continued(self, seconds: int) -> int:
        """Seconds billed for the rest of a call already started: `then` increments only."""
        return 0 if seconds <= 0 else math.ceil(seconds / self.then) * self.then


@dataclass(frozen=True, slots=True)
class SpecialRange:
    """Premium or special numbers priced by range ("+3389" or a short-number head "118")."""

    prefix: str
    name: str
    per_minute: Decimal = Decimal(0)
    per_call: Decimal = Decimal(0)
    included: bool = False  # priced as an ordinary call of its country (0806-0809)


@dataclass(frozen=True)
class RatingConfig:
    source: str
    minutes_per_user: int
    packs: frozenset[Pack]  # packs whose users bring minutes to their site's pool
    pool_increments: Increments
    included: Mapping[tuple[str, NumberKind], str]  # (region, kind) -> 2.6.1 group
    group_labels: Mapping[str, str]
    zone_of_country: Mapping[str, str]
    default_zone: str
    currency: str
    increments: Increments
    connection_fee: Decimal
    prices: Mapping[tuple[str, NumberKind], Decimal]  # (zone, kind) -> per minute
    special: tuple[SpecialRange, ...]  # longest prefix first
    special_default: SpecialRange
    # a pool counted in seconds per user instead of minutes (test and demo pools that run
    # out within seconds); None: `minutes_per_user` minutes
    seconds_per_user: int | None = None

    def zone(self, region: str | None) -> str:
        return self.zone_of_country.get(region or "", self.default_zone)

    def included_group(self, region: str | None, kind: NumberKind) -> str | None:
        return self.included.get((region or "", kind))

    def price(self, zone: str, kind: NumberKind) -> Decimal:
        return self.prices[(zone, kind)]

    def special_range(self, number: str) -> SpecialRange | None:
        for r in self.special:
            if number.startswith(r.prefix):
                return r
        return None


_TOP = frozenset({"bundle", "included", "zones", "default_zone", "tariff", "special",
                  "special_default"})
_BUNDLE = frozenset({"minutes_per_user", "seconds_per_user", "packs", "increments"})
_GROUP = frozenset({"group", "label", "fixed_and_mobile", "fixed"})
_TARIFF = frozenset({"currency", "increments", "connection_fee", "prices"})
_INCREMENTS = frozenset({"first", "then"})
_PRICES = frozenset({"fixed", "mobile"})
_SPECIAL = frozenset({"prefix", "name", "per_minute", "per_call", "included"})


def load_rating(path: str | Path) -> RatingConfig:
    """Load and check a rating file; raises ConfigError listing every issue."""
    return load_rating_data(load_yaml_file(path))


def load_rating_data(src: YamlSource) -> RatingConfig:
    r = Reader(src)
    top = r.mapping(src.data, (), _TOP)
    b = r.mapping(top.get("bundle"), ("bundle",), _BUNDLE)
    minutes = r.integer(b, ("bundle",), "minutes_per_user", 500, 0, 1_000_000)
    per_user_seconds = (r.integer(b, ("bundle",), "seconds_per_user", 0, 0, 60_000_000)
                        if "seconds_per_user" in b else None)
    packs = _packs(r, b)
    pool_inc = _increments(r, b, ("bundle",), Increments(1, 1))
    included, labels = _included(r, top)
    zones = _zones(r, top)
    default_zone = r.text(top, (), "default_zone", required=True) or "world"
    t = r.mapping(top.get("tariff"), ("tariff",), _TARIFF)
    currency = r.text(t, ("tariff",), "currency", default="EUR") or "EUR"
    increments = _increments(r, t, ("tariff",), Increments(1, 1))
    fee = _money(r, t, ("tariff",), "connection_fee")
    prices = _prices(r, t, set(zones.values()) | {default_zone})
    special = _specials(r, top)
    d = r.mapping(top.get("special_default"), ("special_default",), _SPECIAL - {"prefix"})
    default = SpecialRange(
        "", r.text(d, ("special_default",), "name", default="special") or "special",
        _money(r, d, ("special_default",), "per_minute"),
        _money(r, d, ("special_default",), "per_call"),
    )
    if r.issues:
        raise ConfigError(sorted(set(r.issues), key=lambda x: (x.file, x.line, x.field)))
    return RatingConfig(
        source=src.file, minutes_per_user=minutes, packs=packs, pool_increments=pool_inc,
        included=included, group_labels=labels, zone_of_country=zones,
        default_zone=default_zone, currency=currency, increments=increments,
        connection_fee=fee, prices=prices, special=special, special_default=default,
        seconds_per_user=per_user_seconds,
    )


def _packs(r: Reader, b: dict[str, Any]) -> frozenset[Pack]:
    raw = r.text_list(b, ("bundle",), "packs") if "packs" in b else [(p.value, ()) for p in Pack]
    out: set[Pack] = set()
    for name, p in raw:
        try:
            out.add(Pack(name))
        except ValueError:
            r.err(p, f"unknown pack {name!r} (expected one of: "
                     f"{', '.join(x.value for x in Pack)})")
    return frozenset(out)


def _increments(r: Reader, m: dict[str, Any], path: PathKey, default: Increments) -> Increments:
    if "increments" not in m:
        return default
    p = (*path, "increments")
    inc = r.mapping(m.get("increments"), p, _INCREMENTS)
    return Increments(r.integer(inc, p, "first", default.first, 1, 3600),
                      r.integer(inc, p, "then", default.then, 1, 3600))


def _money(r: Reader, m: dict[str, Any], path: PathKey, key: str) -> Decimal:
    v = m.get(key)
    if v is None:
        return Decimal(0)
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        r.err((*path, key), f"must be an amount such as \"0.05\", not {v!r}")
        return Decimal(0)
    try:
        amount = Decimal(str(v).strip())
    except InvalidOperation:
        r.err((*path, key), f"must be an amount such as \"0.05\", not {v!r}")
        return Decimal(0)
    if not amount.is_finite() or amount < 0:
        r.err((*path, key), f"must be a positive amount, not {v!r}")
        return Decimal(0)
    return amount


def _region(r: Reader, code: str, p: PathKey) -> str | None:
    up = code.upper()
    if up not in phonenumbers.SUPPORTED_REGIONS:
        r.err(p, f"unknown country {code!r} (ISO 3166 alpha-2 as libphonenumber knows it)")
        return None
    return up


def _included(r: Reader, top: dict[str, Any]) -> tuple[dict[tuple[str, NumberKind], str],
                                                         dict[str, str]]:
    included: dict[tuple[str, NumberKind], str] = {}
    labels: dict[str, str] = {}
    for i, raw in enumerate(r.seq(top, (), "included")):
        path: PathKey = ("included", i)
        g = r.mapping(raw, path, _GROUP)
        group = r.text(g, path, "group", required=True) or f"group{i}"
        if group in labels:
            r.err((*path, "group"), f"group {group!r} is declared twice")
        labels[group] = r.text(g, path, "label", default=group) or group
        for key, kinds in (("fixed_and_mobile", (NumberKind.FIXED, NumberKind.MOBILE)),
                           ("fixed", (NumberKind.FIXED,))):
            for code, p in r.text_list(g, path, key):
                region = _region(r, code, p)
                if region is None:
                    continue
                for kind in kinds:
                    other = included.get((region, kind))
                    if other is not None and other != group:
                        r.err(p, f"{region} {kind.value} is already included by group {other!r}")
                    included[(region, kind)] = group
    return included, labels


def _zones(r: Reader, top: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    zones = r.mapping(top.get("zones"), ("zones",))
    for zone in zones:
        for code, p in r.text_list(zones, ("zones",), zone):
            region = _region(r, code, p)
            if region is None:
                continue
            if region in out and out[region] != zone:
                r.err(p, f"{region} is already in zone {out[region]!r}")
            out[region] = zone
    return out


def _prices(r: Reader, t: dict[str, Any], zones: set[str]) -> dict[tuple[str, NumberKind], Decimal]:
    out: dict[tuple[str, NumberKind], Decimal] = {}
    path: PathKey = ("tariff", "prices")
    prices = r.mapping(t.get("prices"), path)
    for zone in sorted(zones):
        if zone not in prices:
            r.err(path, f"no prices for zone {zone!r}")
    for zone, raw in prices.items():
        zp = (*path, zone)
        if zone not in zones:
            r.err(zp, f"unknown zone {zone!r} (declare it under zones: or as default_zone)")
        m = r.mapping(raw, zp, _PRICES)
        for kind in (NumberKind.FIXED, NumberKind.MOBILE):
            if kind.value not in m:
                r.err(zp, f"missing required field {kind.value!r}")
            out[(zone, kind)] = _money(r, m, zp, kind.value)
    return out


def _specials(r: Reader, top: dict[str, Any]) -> tuple[SpecialRange, ...]:
    out: list[SpecialRange] = []
    seen: set[str] = set()
    for i, raw in enumerate(r.seq(top, (), "special")):
        path: PathKey = ("special", i)
        m = r.mapping(raw, path, _SPECIAL)
        prefix = r.text(m, path, "prefix", required=True) or ""
        digits = prefix[1:] if prefix.startswith("+") else prefix
        if prefix and not digits.isdigit():
            r.err((*path, "prefix"), f"must be digits, with an optional leading '+': {prefix!r}")
        if prefix in seen:
            r.err((*path, "prefix"), f"range {prefix} is declared twice")
        seen.add(prefix)
        out.append(SpecialRange(
            prefix, r.text(m, path, "name", default=prefix) or prefix,
            _money(r, m, path, "per_minute"), _money(r, m, path, "per_call"),
            r.boolean(m, path, "included", False),
        ))
    return tuple(sorted(out, key=lambda x: (-len(x.prefix), x.prefix)))
