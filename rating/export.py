"""The monthly billing export: per site, the active packs of the month, the pool, the minutes
used, what was charged by zone; per call, the rated line. Pure: the records of the month and
the plan's sites go in, a `MonthlyExport` (and its CSV or JSON text) comes out.

Service description section 15: packs are billed monthly "sur la base des packs actifs sur
la période de facturation", and "toute licence activée dans le mois est facturée pour la
totalité du mois en cours, sans possibilité de prorata temporis": every user of the plan
counts for the whole month, and brings the whole month's minutes to the pool (2.6.1).

The same records always give the same figures: records are rated in a fixed order
(`engine.call_order`), amounts are decimals rounded per line, totals are sums of lines, and
every list is sorted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dialplan.model import Plan
from dialplan.packs import Pack

from .cdr import CallRecord
from .engine import DEFAULT_TIMEZONE, RateClass, RatedCall, SiteInfo, rate_records
from .tariff import RatingConfig

_MINUTE = Decimal("0.01")
# Time zones reach UTC-12 and UTC+14: records this far around a month may belong to it.
MONTH_MARGIN = timedelta(hours=15)


def parse_month(month: str) -> tuple[int, int]:
    """"2026-11" -> (2026, 11); ValueError otherwise."""
    year, sep, mon = month.partition("-")
    if not sep or len(year) != 4 or len(mon) != 2 or not (year + mon).isdigit():
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    y, m = int(year), int(mon)
    if not 1 <= m <= 12:
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    return y, m


def month_window(month: str) -> tuple[float, float]:
    """Epoch bounds [from, to) of the records a reader must fetch for `month`: the month in
    UTC widened by the largest time zone offsets; the export keeps the calls that started in
    the month of their own site."""
    y, m = parse_month(month)
    first = datetime(y, m, 1, tzinfo=UTC)
    nxt = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return (first - MONTH_MARGIN).timestamp(), (nxt + MONTH_MARGIN).timestamp()


def sites_from_plan(plan: Plan) -> dict[tuple[str, str], SiteInfo]:
    """Every site of the plan with its users counted by pack (section 15: assigned packs)."""
    out: dict[tuple[str, str], SiteInfo] = {}
    for c in plan.customers:
        for s in c.sites:
            packs: dict[Pack, int] = {}
            for u in s.users:
                packs[u.pack] = packs.get(u.pack, 0) + 1
            out[(c.id, s.code)] = SiteInfo(c.id, s.code, s.name, s.timezone, packs)
    return out


def on_net_of(plan: Plan) -> Callable[[str], bool]:
    """Numbers hosted on this platform: calls to them never leave it (free)."""
    return lambda number: plan.owner_of_number(number) is not None


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """Charged calls of a site by zone: `charge` is overage (included destination past the
    pool), not_included, or special."""

    zone: str
    charge: str
    calls: int
    seconds: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class SiteSummary:
    customer: str
    site: str
    name: str
    timezone: str
    packs: tuple[tuple[str, int], ...]
    active_users: int
    pool_seconds: int
    used_seconds: int
    included_calls: int
    charges: tuple[ChargeLine, ...]

    @property
    def overage_seconds(self) -> int:
        return sum(c.seconds for c in self.charges if c.charge == "overage")

    @property
    def overage_amount(self) -> Decimal:
        return sum((c.amount for c in self.charges if c.charge == "overage"), Decimal(0))

    @property
    def amount(self) -> Decimal:
        return sum((c.amount for c in self.charges), Decimal(0))


@dataclass(frozen=True, slots=True)
class MonthlyExport:
    month: str
    currency: str
    customer: str | None
    sites: tuple[SiteSummary, ...]
    calls: tuple[RatedCall, ...]
    timezones: Mapping[tuple[str, str], str]


def _charge_kind(line: RatedCall) -> str | None:
    if line.charged_seconds == 0 and line.amount == 0:
        return None
    if line.rate_class is RateClass.INCLUDED:
        return "overage"
    if line.rate_class is RateClass.SPECIAL:
        return "special"
    return "not_included"


def build_export(
    records: Iterable[CallRecord], config: RatingConfig,
    sites: Mapping[tuple[str, str], SiteInfo], month: str, *, customer: str | None = None,
    on_net: Callable[[str], bool] | None = None,
) -> MonthlyExport:
    """Rate `records` (any superset of the month's, e.g. `month_window`) and sum the month."""
    parse_month(month)
    chosen = [r for r in records if customer is None or r.customer == customer]
    lines = [x for x in rate_records(chosen, config, sites, on_net) if x.month == month]
    keys = {k for k in sites if customer is None or k[0] == customer}
    keys |= {(x.customer, x.site) for x in lines}
    by_site: dict[tuple[str, str], list[RatedCall]] = {k: [] for k in keys}
    for x in lines:
        by_site[(x.customer, x.site)].append(x)
    summaries = []
    for key in sorted(keys):
        info = sites.get(key) or SiteInfo(key[0], key[1])
        site_lines = by_site[key]
        charges: dict[tuple[str, str], list[int | Decimal]] = {}
        for x in site_lines:
            kind = _charge_kind(x)
            if kind is None:
                continue
            acc = charges.setdefault((x.zone if kind != "special" else x.special or "special",
                                      kind), [0, 0, Decimal(0)])
            acc[0] += 1
            acc[1] += x.charged_seconds
            acc[2] += x.amount
        summaries.append(SiteSummary(
            customer=key[0], site=key[1], name=info.name, timezone=str(info.timezone),
            packs=tuple(sorted((p.value, n) for p, n in info.packs.items())),
            active_users=info.active_users(config), pool_seconds=info.pool_seconds(config),
            used_seconds=sum(x.drawn_seconds for x in site_lines),
            included_calls=sum(1 for x in site_lines if x.drawn_seconds > 0),
            charges=tuple(ChargeLine(z, k, int(a[0]), int(a[1]), Decimal(a[2]))
                          for (z, k), a in sorted(charges.items())),
        ))
    tzs = {k: str((sites.get(k) or SiteInfo(*k)).timezone) for k in keys}
    ordered = sorted(lines, key=lambda x: (x.customer, x.site, x.start, x.record_id))
    return MonthlyExport(month, config.currency, customer, tuple(summaries), tuple(ordered), tzs)


def minutes(seconds: int) -> str:
    return str((Decimal(seconds) / 60).quantize(_MINUTE))


def _local(epoch: float, tz: str) -> str:
    zone = ZoneInfo(tz) if tz else DEFAULT_TIMEZONE
    return datetime.fromtimestamp(epoch, zone).isoformat(timespec="seconds")


def site_dict(s: SiteSummary) -> dict[str, Any]:
    return {
        "customer": s.customer, "site": s.site, "name": s.name, "timezone": s.timezone,
        "packs": dict(s.packs), "active_users": s.active_users,
        "pool_minutes": minutes(s.pool_seconds), "used_minutes": minutes(s.used_seconds),
        "remaining_minutes": minutes(max(0, s.pool_seconds - s.used_seconds)),
        "included_calls": s.included_calls,
        "overage_minutes": minutes(s.overage_seconds), "overage_amount": str(s.overage_amount),
        "charges": [{"zone": c.zone, "charge": c.charge, "calls": c.calls,
                     "minutes": minutes(c.seconds), "amount": str(c.amount)} for c in s.charges],
        "amount": str(s.amount),
    }


def call_dict(x: RatedCall, tz: str) -> dict[str, Any]:
    return {
        "record_id": x.record_id, "customer": x.customer, "site": x.site,
        "start": _local(x.start, tz), "caller": x.caller, "callee": x.callee,
        "class": x.rate_class.value, "zone": x.zone, "country": x.country,
        "kind": x.kind.value if x.kind is not None else None, "group": x.group,
        "special": x.special, "seconds": x.seconds, "drawn_seconds": x.drawn_seconds,
        "charged_seconds": x.charged_seconds, "amount": str(x.amount),
    }


def to_json(exp: MonthlyExport) -> str:
    doc = {
        "month": exp.month, "currency": exp.currency, "customer": exp.customer,
        "sites": [site_dict(s) for s in exp.sites],
        "calls": [call_dict(x, exp.timezones.get((x.customer, x.site), "")) for x in exp.calls],
    }
    # no indent: the C encoder (a month of a large customer is a million lines)
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


SITE_COLUMNS = ["month", "customer", "site", "name", "packs", "active_users", "pool_minutes",
                "used_minutes", "remaining_minutes", "included_calls", "overage_minutes",
                "overage_amount", "amount"]
CHARGE_COLUMNS = ["month", "customer", "site", "zone", "charge", "calls", "minutes", "amount"]
CALL_COLUMNS = ["record_id", "customer", "site", "start", "caller", "callee", "class", "zone",
                "country", "kind", "group", "special", "seconds", "drawn_seconds",
                "charged_seconds", "amount"]


def to_csv(exp: MonthlyExport) -> str:
    """Three tables in one text, each after a `# sites` / `# charges` / `# calls` line and
    separated by a blank line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    buf.write("# sites\n")
    w.writerow(SITE_COLUMNS)
    for s in exp.sites:
        d = site_dict(s)
        d["month"] = exp.month
        d["packs"] = ";".join(f"{p}={n}" for p, n in s.packs)
        w.writerow([d[c] for c in SITE_COLUMNS])
    buf.write("\n# charges\n")
    w.writerow(CHARGE_COLUMNS)
    for s in exp.sites:
        for c in s.charges:
            w.writerow([exp.month, s.customer, s.site, c.zone, c.charge, c.calls,
                        minutes(c.seconds), str(c.amount)])
    buf.write("\n# calls\n")
    w.writerow(CALL_COLUMNS)
    for x in exp.calls:
        d = call_dict(x, exp.timezones.get((x.customer, x.site), ""))
        w.writerow(["" if d[c] is None else d[c] for c in CALL_COLUMNS])
    return buf.getvalue()


def render(exp: MonthlyExport, fmt: str) -> str:
    if fmt == "json":
        return to_json(exp)
    if fmt == "csv":
        return to_csv(exp)
    raise ValueError(f"format must be csv or json, not {fmt!r}")
