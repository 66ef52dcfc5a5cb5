"""Number normalisation and classification with phonenumbers (libphonenumber metadata).

External numbers are normalised to E.164 (ITU-T E.164) and put in call categories that the
barring profiles allow or refuse. Classification of one dialed string is a pure function of
(digits, region), so it is memoised: phonenumbers costs ~25 us a number, the routing budget
is 20 us a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo
from phonenumbers.shortnumberinfo import ShortNumberCost


class CallCategory(Enum):
    """What a barring profile allows (`allow:` list in YAML)."""

    INTERNAL = "internal"  # users, groups, queues, auto-attendants of the same customer
    NATIONAL = "national"  # geographic and non-geographic (09) fixed numbers
    MOBILE = "mobile"
    TOLL_FREE = "toll_free"  # 080x
    SHARED_COST = "shared_cost"  # 081x/082x value-added services at a capped price
    PREMIUM = "premium"  # 089x, 0836, short 3xxx at a premium (service description 2.4.1)
    SERVICE = "service"  # short service numbers at a standard price (3xxx, 118xxx, 10xx)
    INTERNATIONAL = "international"


# French emergency numbers (ARCEP / CPCE list): 15 SAMU, 17 police, 18 fire, 112 EU,
# 114 deaf and hard of hearing, 115 homeless, 116000 missing children, 116117 on-call
# doctors, 119 children at risk, 191 aviation, 196 sea, 197 terror alert. A deployment
# may replace the list per customer (`emergency_numbers:`).
DEFAULT_EMERGENCY_NUMBERS: tuple[str, ...] = (
    "15", "17", "18", "112", "114", "115", "116000", "116117", "119", "191", "196", "197",
)

# RFC 5031 service URNs -> the French number that serves them; plain `urn:service:sos`
# and unknown sub-services go to 112, the single European emergency number.
SOS_URN_NUMBERS: dict[str, str] = {
    "sos": "112",
    "sos.ambulance": "15",
    "sos.physician": "15",
    "sos.police": "17",
    "sos.fire": "18",
    "sos.marine": "196",
}

_VISUAL_SEPARATORS = str.maketrans("", "", " -.()\t")


def strip_separators(text: str) -> str:
    """Drop RFC 3966 visual separators (section 5.1.1) and blanks people type."""
    return text.translate(_VISUAL_SEPARATORS)


@dataclass(frozen=True, slots=True)
class Classified:
    """Result of normalising an external dialed string."""

    e164: str | None  # None for short service numbers, which have no E.164 form
    digits: str  # what goes on the trunk when e164 is None
    categories: frozenset[CallCategory]
    error: str | None = None  # set when the string is not a callable number
    incomplete: bool = False  # too short: SIP 484 rather than 404


def _type_categories(num: phonenumbers.PhoneNumber) -> set[CallCategory]:
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.PREMIUM_RATE:
        return {CallCategory.PREMIUM}
    if kind == PhoneNumberType.SHARED_COST:
        return {CallCategory.SHARED_COST}
    if kind == PhoneNumberType.TOLL_FREE:
        return {CallCategory.TOLL_FREE}
    if kind == PhoneNumberType.MOBILE:
        return {CallCategory.MOBILE}
    return {CallCategory.NATIONAL}


# The French numbering plan (ARCEP, "plan national de numérotation") covers metropolitan
# France and the overseas departments (DROM: Réunion, Mayotte, Guadeloupe, Martinique,
# Guyane) plus Saint-Barthélemy and Saint-Martin, which share Guadeloupe's numbers. Inside
# it every number is dialed "0" + 9 digits, but the DROM numbers have their own E.164
# country codes (ITU-T E.164 assignment list): +262 Réunion and Mayotte, +590 Guadeloupe,
# Saint-Barthélemy and Saint-Martin, +594 Guyane, +596 Martinique. The 9 digits after the
# "0" are the national significant number under that code: 0262 41 23 45 is +262 262 41 23 45.
FRENCH_PLAN_REGIONS = frozenset({"FR", "RE", "YT", "GP", "BL", "MF", "MQ", "GF"})
DROM_COUNTRY_CODES: tuple[int, ...] = (262, 590, 594, 596)
# Blocks ARCEP gives to the DROM only (fixed 0262/0263/0269, 02688/02689, 0590/0594/0596 and
# the newer 05987-05989; mobile 0639, 0690-0694, 0696-0697 and 07090-07093). libphonenumber's FR data
# covers some of them with broader patterns (26[013-9], 59[1-35-9]), so a number there that
# no DROM range holds is unallocated, never a metropolitan one.
_DROM_ONLY_BLOCKS: tuple[str, ...] = (
    "262", "263", "269", "2688", "2689", "590", "594", "596", "5987", "5988", "5989",
    "639", "690", "691", "692", "693", "694", "696", "697", "7090", "7091", "7092", "7093",
)
# First digits of the DROM fixed and mobile ranges; other national numbers skip the DROM
# look-up. 080x-089x are France-wide special numbers and 09 the France-wide non-geographic
# ones: they stay +33 even where a DROM range repeats them (libphonenumber's DROM VoIP
# ranges overlap each other: 0976 6x is both Martinique and Guyane there).
_DROM_LEADS: tuple[str, ...] = ("26", "59", "63", "69", "709")


@lru_cache(maxsize=65536)
def drom_number(nsn: str) -> phonenumbers.PhoneNumber | None:
    """The DROM number whose national significant number is `nsn` (the 9 digits after the
    national "0"), or None when no DROM range holds it."""
    if len(nsn) != 9 or not nsn.isdigit() or not nsn.startswith(_DROM_LEADS):
        return None
    for cc in DROM_COUNTRY_CODES:
        num = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
        if phonenumbers.is_valid_number(num):
            return num
    return None


def in_drom_block(nsn: str) -> bool:
    """True when `nsn` lies in a block of the French plan reserved to the DROM."""
    return nsn.startswith(_DROM_ONLY_BLOCKS)


def same_numbering_plan(a: str | None, b: str) -> bool:
    """True when regions `a` and `b` dial each other nationally (same region, or both in
    the French plan: a Paris user calls Réunion with 0262..., a national call)."""
    return a == b or (a in FRENCH_PLAN_REGIONS and b in FRENCH_PLAN_REGIONS)


def parse_dialed_number(digits: str, region: str) -> phonenumbers.PhoneNumber:
    """phonenumbers.parse, with national dialing across the whole French plan: from any of
    its regions "0" + 9 digits is a DROM number when a DROM range holds it, else a
    metropolitan (+33) number. Raises phonenumbers.NumberParseException."""
    if (
        region in FRENCH_PLAN_REGIONS and len(digits) == 10 and digits[0] == "0"
        and digits[1] != "0" and digits.isdigit()
    ):
        nsn = digits[1:]
        drom = drom_number(nsn)
        if drom is not None:
            return drom
        return phonenumbers.PhoneNumber(country_code=33, national_number=int(nsn))
    num = phonenumbers.parse(digits, region)
    if num.country_code == 33:
        # "+33 262..." is a common way of writing a DROM number; it is +262 262...
        return drom_number(str(num.national_number)) or num
    return num


def french_national_e164(digits: str, region: str) -> str | None:
    """Cheap E.164 of a national "0..." number of the French plan when it is a DROM one
    (memoised look-up), else None: for the on-net checks that must not call phonenumbers."""
    if region not in FRENCH_PLAN_REGIONS or len(digits) != 10 or digits[0] != "0":
        return None
    num = drom_number(digits[1:])
    return None if num is None else f"+{num.country_code}{digits[1:]}"


@lru_cache(maxsize=65536)
def classify_external(dialed: str, region: str) -> Classified:
    """Normalise `dialed` ("0612345678", "0044...", "+44...", "3639") from `region`."""
    if not dialed or any(c not in "+0123456789" for c in dialed) or "+" in dialed[1:]:
        return Classified(None, dialed, frozenset(), "not a dialable number")
    try:
        num = parse_dialed_number(dialed, region)
    except phonenumbers.NumberParseException as exc:
        return Classified(None, dialed, frozenset(), str(exc), incomplete=True)
    if (
        num.country_code == 33 and in_drom_block(str(num.national_number))
    ):
        return Classified(None, dialed, frozenset(), "not a valid number (unallocated DROM range)")
    if not dialed.startswith(("+", "00")) and shortnumberinfo.is_valid_short_number_for_region(
        num, region
    ):
        cost = shortnumberinfo.expected_cost_for_region(num, region)
        cat = CallCategory.PREMIUM if cost == ShortNumberCost.PREMIUM_RATE else CallCategory.SERVICE
        return Classified(None, dialed, frozenset({cat}))
    if not phonenumbers.is_valid_number(num):
        reason = phonenumbers.is_possible_number_with_reason(num)
        too_short = reason in (
            phonenumbers.ValidationResult.TOO_SHORT,
            phonenumbers.ValidationResult.INVALID_LENGTH,
        )
        return Classified(None, dialed, frozenset(), "not a valid number", incomplete=too_short)
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    cats = _type_categories(num)
    if not same_numbering_plan(phonenumbers.region_code_for_number(num), region):
        # Abroad, fixed and mobile are just international (the DROM are not abroad from
        # France: same national plan, national tariffs); a premium number abroad
        # ((+xx)89, section 2.4.1) is both international and premium.
        cats = {CallCategory.INTERNATIONAL} | (cats & {CallCategory.PREMIUM, CallCategory.SHARED_COST})
    return Classified(e164, dialed, frozenset(cats))


def parse_e164(text: str) -> str | None:
    """The E.164 form of `text` if it is a valid number written with '+', else None."""
    if not text.startswith("+"):
        return None
    try:
        num = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return e164 if e164 == text else None


@lru_cache(maxsize=256)
def national_prefix(region: str) -> str:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return (meta.national_prefix or "") if meta is not None else ""


@lru_cache(maxsize=256)
def country_code(region: str) -> int:
    return phonenumbers.country_code_for_region(region)


def is_short_service_number(digits: str, region: str) -> bool:
    """True for a valid short number of `region` (3639, 118712, 1014...)."""
    try:
        num = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(shortnumberinfo.is_valid_short_number_for_region(num, region))


# First digits of short voice-service numbers, per region. France (ARCEP numbering plan):
# 10xx carrier selection, 11x/116xxx/118xxx social and directory services, 3BPQ service
# numbers. libphonenumber's short-number data also holds SMS short codes (5-digit 2xxxx to
# 8xxxx) that a voice plan never meets, so the table is explicit.
SERVICE_LEADING_DIGITS: dict[str, dict[str, str]] = {
    "FR": {"1": "short service numbers (10xx, 118xxx, 116xxx)", "3": "service numbers (3BPQ)"},
}


@lru_cache(maxsize=64)
def leading_digits_in_use(region: str, emergency: tuple[str, ...]) -> dict[str, str]:
    """First digits an internal prefix must not take, with why (section 2.6.3.1: the prefix
    is "un chiffre qui n'est pas utilisé dans le plan de numérotation pour joindre les
    correspondants externes")."""
    used: dict[str, str] = {}
    np = national_prefix(region)
    if np:
        used[np[0]] = "national numbers"
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is not None and meta.international_prefix and meta.international_prefix.isdigit():
        used.setdefault(meta.international_prefix[0], "international numbers")
    for e in emergency:
        used.setdefault(e[0], f"emergency number {e}")
    for d, why in SERVICE_LEADING_DIGITS.get(region, {}).items():
        used.setdefault(d, why)
    return used


def collides_with_service(digits: str, region: str) -> bool:
    """True when a short extension would shadow a short service number (3639, 1014...)."""
    return digits[:1] in SERVICE_LEADING_DIGITS.get(region, {}) and is_short_service_number(
        digits, region
    )


@dataclass(frozen=True, slots=True)
class NumberRange:
    """A block of public numbers (SDA/DID), inclusive: "+33562070400-+33562070499"."""

    first: str
    last: str

    def __contains__(self, e164: object) -> bool:
        return (
            isinstance(e164, str)
            and len(e164) == len(self.first)
            and self.first <= e164 <= self.last
        )

    def __str__(self) -> str:
        return self.first if self.first == self.last else f"{self.first}-{self.last}"

    @property
    def size(self) -> int:
        return int(self.last[1:]) - int(self.first[1:]) + 1
