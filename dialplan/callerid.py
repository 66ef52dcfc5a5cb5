"""Caller-ID rules: which number a user's call may present outward.

Service description section 2.6 and French numbering rules (ARCEP decision 2022-1583, which
forbids presenting numbers one is not assigned, and the ban on presenting premium-rate,
special or mobile numbers from a fixed line): only the customer's own, callable,
non-premium numbers go out. Anything else a phone presents is replaced by the permitted
number (the user's own public number, else the site's main number) and the replacement is
reported so the switch can log it.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from .model import User
from .numbers import in_drom_block, parse_dialed_number

# Number types a business line may never present (premium, shared cost, personal, UAN...).
_FORBIDDEN_TYPES = frozenset({
    PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL, PhoneNumberType.PAGER,
    PhoneNumberType.TOLL_FREE,
})
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE})


@dataclass(frozen=True, slots=True)
class CallerIdDecision:
    number: str | None  # E.164 to present, None when the user and site have no number
    replaced: bool
    reason: str  # why the presented number was replaced ("" when kept or none presented)


def permitted_number(user: User) -> str | None:
    """The user's own public number, else the site's main number (issue 6)."""
    return user.public_number or user.site.main_number


def normalise(presented: str, region: str = "FR") -> str | None:
    """E.164 for what a phone presented (`+33...`, `0...` or `33...`), None if not a number."""
    text = presented.strip()
    if not text or not all(c.isdigit() or c in "+-. ()" for c in text):
        return None
    try:
        parsed = parse_dialed_number(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    if parsed.country_code == 33 and in_drom_block(str(parsed.national_number)):
        return None  # an unallocated DROM number, never a metropolitan one
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def decide(user: User, presented: str | None) -> CallerIdDecision:
    """Keep `presented` only when every rule allows it; otherwise the permitted number."""
    permitted = permitted_number(user)
    if presented is None or presented == user.full_number or presented == user.extension:
        return CallerIdDecision(permitted, False, "")
    e164 = normalise(presented, user.customer.country)
    if e164 is None:
        return CallerIdDecision(permitted, True, f"{presented!r} is not a callable E.164 number")
    if e164 == permitted:
        return CallerIdDecision(permitted, False, "")
    parsed = phonenumbers.parse(e164)
    kind = phonenumbers.number_type(parsed)
    if kind in _FORBIDDEN_TYPES:
        return CallerIdDecision(permitted, True, f"{e164} is a premium-rate or special number")
    national = phonenumbers.national_significant_number(parsed)
    if len(national) <= 4:
        return CallerIdDecision(permitted, True, f"{e164} is a short number")
    owner = user.customer.range_of(e164)
    if owner is None:
        return CallerIdDecision(permitted, True, f"{e164} is not one of the customer's numbers")
    if any(other.public_number == e164 and other is not user for other in user.customer.users):
        # another user's own number is an impersonation, not a presentation choice: the
        # authenticated identity goes out (as Kamailio's auth_check with identity check)
        return CallerIdDecision(permitted, True, f"{e164} is another user's number")
    if kind in _MOBILE_TYPES and permitted is not None:
        own_kind = phonenumbers.number_type(phonenumbers.parse(permitted))
        if own_kind not in _MOBILE_TYPES:
            return CallerIdDecision(permitted, True,
                                    f"{e164} is a mobile number presented from a fixed line")
    return CallerIdDecision(e164, False, "")
