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


@lru_cache(maxsize=65536)
def classify_external(dialed: str, region: str) -> Classified:
    """Normalise `dialed` ("0612345678", "0044...", "+44...", "3639") from `region`."""
    if not dialed or any(c not in "+0123456789" for c in dialed) or "+" in dialed[1:]:
        return Classified(None, dialed, frozenset(), "not a dialable number")
    try:
        num = phonenumbers.parse(dialed, region)
    except phonenumbers.NumberParseException as exc:
        return Classified(None, dialed, frozenset(), str(exc), incomplete=True)
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
    if phonenumbers.region_code_for_number(num) != region:
        # Abroad, fixed and mobile are just international; a premium number abroad
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
