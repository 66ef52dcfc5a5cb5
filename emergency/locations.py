"""Self-declared emergency locations of nomadic devices (issue 7, annex 16.1 "emergency
location update URL").

A softphone that registers from outside its site's declared networks cannot be located by
the site's civic address. Its user declares where they are; emergency calls from such a
device carry that declaration (or say the location is unknown) and alert the admin.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DeclaredLocation:
    aor: str  # the user's line ("acme:502411")
    street: str
    number: str
    postal_code: str
    city: str
    country: str = "FR"
    extra: str = ""
    updated_at: float = 0.0

    def __str__(self) -> str:
        extra = f", {self.extra}" if self.extra else ""
        return f"{self.number} {self.street}{extra}, {self.postal_code} {self.city}, {self.country}"


class LocationTextError(ValueError):
    """A declared location field that cannot be stored or sent to a PSAP; the message is
    plain and short (it goes back to the user as is)."""


# Limits of the declaration form (annex 16.1); the PIDF-LO elements carry them unchanged.
FIELD_LIMITS: dict[str, int] = {"street": 200, "number": 32, "postal_code": 16, "city": 100,
                                "country": 2, "extra": 200}


def check_text(name: str, value: str, *, required: bool = True) -> str:
    """One text field of a declared location, trimmed; LocationTextError when it is empty
    (and required), too long, or holds a character that is no printable text: control
    characters (NUL, newline, ESC...), format and separator characters (U+2028), lone
    surrogates and non-characters. Such text would make the PIDF-LO of the next emergency
    call invalid XML (RFC 4119 bodies are XML 1.0) or hide text from the PSAP's operator."""
    text = value.strip(" ")  # only spaces: any other character is checked below
    limit = FIELD_LIMITS.get(name, 200)
    if not text and required:
        raise LocationTextError(f"{name}: required")
    if len(text) > limit:
        raise LocationTextError(f"{name}: longer than {limit} characters")
    for ch in text:
        if ch != " " and (not ch.isprintable() or unicodedata.category(ch) in ("Cs", "Co")
                          or 0xFDD0 <= ord(ch) <= 0xFDEF or (ord(ch) & 0xFFFE) == 0xFFFE):
            raise LocationTextError(f"{name}: control or invalid characters are not allowed")
    if name == "country" and not (len(text) == 2 and text.isascii() and text.isalpha()):
        raise LocationTextError("country: two letters (ISO 3166-1 alpha-2)")
    return text


class LocationRepository(Protocol):
    async def save(self, location: DeclaredLocation) -> None: ...

    async def load_all(self) -> Sequence[DeclaredLocation]: ...


class DeclaredLocations:
    """The in-memory view used on the call path; the repository keeps it durable."""

    def __init__(self) -> None:
        self._by_aor: dict[str, DeclaredLocation] = {}

    def load(self, locations: Sequence[DeclaredLocation]) -> None:
        for loc in locations:
            self._by_aor[loc.aor] = loc

    def set(self, location: DeclaredLocation) -> None:
        self._by_aor[location.aor] = location

    def get(self, aor: str) -> DeclaredLocation | None:
        return self._by_aor.get(aor)
