"""Short-lived SIP passwords for browsers (issue 23). Pure: time is passed in.

The softphone page never holds the user's SIP password. The switch issues a password
derived from a secret it alone knows, the user and an expiry, like the TURN REST scheme
(draft-uberti-behave-turn-rest-00 section 2.2), but the SIP user name stays the user's own
(`501410`), so the REGISTER binds the user's AOR and the digest exchange is the ordinary
one (RFC 7616):

    password = b64url(HMAC-SHA-256(secret, "<user>@<realm>|<expiry>"))[:32]

Expiries are aligned on `ttl`, so the switch does not need the expiry in the request: a
credential issued at t expires at the first multiple of `ttl` after t + ttl (valid between
ttl and 2 ttl), and a digest check tries the two expiries still in the future
(`candidates`). Such a password is accepted only over WS/WSS (`ALLOWED_TRANSPORTS`):
stolen from a browser, it does not register a desk phone over UDP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass

from devices.accounts import Account, AccountDirectory, make_account
from devices.digest import AuthOutcome, AuthResult, DigestAuthenticator
from switch.sip import Request

ALLOWED_TRANSPORTS = frozenset({"WS", "WSS"})  # RFC 7118 transports, where browsers are


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    username: str
    password: str
    realm: str
    expires: int  # epoch seconds


class EphemeralCredentials:
    """Issue and check short-lived passwords; `secret` is at least 16 bytes."""

    def __init__(self, secret: bytes, ttl: float = 600.0) -> None:
        if len(secret) < 16:
            raise ValueError("the credential secret must be at least 16 bytes")
        if ttl < 60:
            raise ValueError("credentials must live at least a minute")
        self._secret = secret
        self.ttl = int(ttl)

    def password(self, username: str, realm: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{username}@{realm}|{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode("ascii")[:32]

    def expiry_for(self, now: float) -> int:
        """The aligned expiry of a credential issued at `now` (between ttl and 2 ttl away)."""
        return (math.floor(now / self.ttl) + 2) * self.ttl

    def issue(self, username: str, realm: str, now: float) -> IssuedCredentials:
        expires = self.expiry_for(now)
        return IssuedCredentials(username, self.password(username, realm, expires), realm,
                                 expires)

    def candidates(self, now: float) -> tuple[int, ...]:
        """The expiries a credential still valid at `now` can have."""
        first = (math.floor(now / self.ttl) + 1) * self.ttl
        return tuple(e for e in (first, first + self.ttl) if e > now)

    def directory(self, base: AccountDirectory, expires: int) -> AccountDirectory:
        """`base`'s accounts with the password of expiry `expires` (for the digest check)."""
        return _Derived(base, self, expires)


class _Derived:
    def __init__(self, base: AccountDirectory, creds: EphemeralCredentials, expires: int) -> None:
        self.base = base
        self.creds = creds
        self.expires = expires

    def find(self, username: str, realm: str) -> Account | None:
        account = self.base.find(username, realm)
        if account is None:
            return None
        password = self.creds.password(account.username, account.realm, self.expires)
        return make_account(account.username, account.realm, password, account.aor,
                            max_contacts=account.max_contacts)


def verify_digest(digest: DigestAuthenticator, request: Request, realm: str,
                  directory: AccountDirectory, now: float, *, transport: str,
                  ephemeral: EphemeralCredentials | None, proxy: bool = False) -> AuthResult:
    """`digest.verify`, then, for a request that came over WS/WSS and failed with the SIP
    password, the same check with each short-lived password still valid. The outcome is
    the first that is not FAILED; the caller counts failures in the guard as before, so
    guessing costs the same (one failure per request)."""
    result = digest.verify(request, realm, directory, now, proxy=proxy)
    if (ephemeral is None or result.outcome is not AuthOutcome.FAILED
            or transport.upper() not in ALLOWED_TRANSPORTS):
        return result
    for expires in ephemeral.candidates(now):
        again = digest.verify(request, realm, ephemeral.directory(directory, expires), now,
                              proxy=proxy)
        if again.outcome is not AuthOutcome.FAILED:
            return again
    return result
