"""SIP accounts: an auth user name, a realm and HA1 digests only (RFC 7616 section 3.4.2).

The password is never stored: an account keeps H(username:realm:password) for MD5 and
SHA-256 (RFC 8760 section 2 keeps SHA-256 and MD5 side by side for older phones).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

ALGORITHMS = ("MD5", "SHA-256")


@dataclass(frozen=True, slots=True)
class Account:
    """One SIP account. `aor` is the stable key of the address-of-record ("acme:501410")."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str
    aor: str
    max_contacts: int | None = None  # None: the registrar's default

    def ha1_for(self, algorithm: str) -> str:
        """The stored HA1 for a base algorithm name ("MD5" or "SHA-256")."""
        return self.ha1_sha256 if algorithm.upper() == "SHA-256" else self.ha1_md5


class AccountDirectory(Protocol):
    """Where the authenticator looks accounts up (the dialplan adapts to this)."""

    def find(self, username: str, realm: str) -> Account | None: ...


class StaticAccountDirectory:
    """A dict-based directory keyed by (username, realm)."""

    __slots__ = ("_accounts",)

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._accounts: dict[tuple[str, str], Account] = {
            (a.username, a.realm): a for a in accounts
        }

    def find(self, username: str, realm: str) -> Account | None:
        return self._accounts.get((username, realm))

    def __len__(self) -> int:
        return len(self._accounts)


def hash_hex(algorithm: str, data: str) -> str:
    """H(data) for a digest base algorithm (RFC 7616 section 3.4.1)."""
    if algorithm == "SHA-256":  # the exact names first: three of these per REGISTER
        return hashlib.sha256(data.encode()).hexdigest()
    if algorithm == "MD5":
        return hashlib.md5(data.encode(), usedforsecurity=False).hexdigest()
    name = algorithm.upper()
    if name in ALGORITHMS:
        return hash_hex(name, data)
    raise ValueError(f"unsupported digest algorithm {algorithm!r}")


def ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """HA1 = H(username ":" realm ":" password) (RFC 7616 section 3.4.2)."""
    return hash_hex(algorithm, f"{username}:{realm}:{password}")


def make_account(username: str, realm: str, password: str, aor: str,
                 *, max_contacts: int | None = None) -> Account:
    """An account from a clear password (tests and provisioning tools only)."""
    return Account(username, realm, ha1(username, realm, password, "MD5"),
                   ha1(username, realm, password, "SHA-256"), aor, max_contacts)
