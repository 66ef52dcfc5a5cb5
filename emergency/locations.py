"""Self-declared emergency locations of nomadic devices (issue 7, annex 16.1 "emergency
location update URL").

A softphone that registers from outside its site's declared networks cannot be located by
the site's civic address. Its user declares where they are; emergency calls from such a
device carry that declaration (or say the location is unknown) and alert the admin.
"""

from __future__ import annotations

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
