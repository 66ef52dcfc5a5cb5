"""Who is calling the admin API (issue 18): roles, API tokens, user sessions.

Three roles, least privilege:
- `operator`: every customer (tokens from `wte tokens create --role operator`, and the
  `WTE_ADMIN_TOKEN` of the environment, which stays an operator token);
- `customer-admin`: one customer (`--role customer-admin --customer ID`);
- `user`: itself only, after logging in with its SIP credentials (`POST /api/v1/session`,
  checked against the stored HA1 through the failure guard of SIP digest).

API tokens are stored hashed (switch.storage.admin_api). User sessions are short-lived,
stateless signed tokens (`wtes.<payload>.<HMAC-SHA256>`, the key in the data directory,
`api-session.key`): any code of the switch verifies one without the database, with
`verify_session(token)` (the WebRTC gateway's entry point) or `SessionTokens.verify`.
A logout lists the token as revoked until it would have expired.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.accounts import Account, ha1
from devices.logsafe import printable

if TYPE_CHECKING:
    from devices.guard import AuthFailureGuard

log = logging.getLogger("switch.admin.auth")

ADMIN_TOKEN_ENV = "WTE_ADMIN_TOKEN"
SESSION_SECONDS = 3600.0  # a user's session token lives an hour
SESSION_PREFIX = "wtes."
KEY_FILE = "api-session.key"


class Role(Enum):
    OPERATOR = "operator"
    CUSTOMER_ADMIN = "customer-admin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. `customer` is None only for an operator; `user` (the
    full internal number) and `aor` (`customer:number`) are set only for a user."""

    role: Role
    name: str  # for the audit log: the token's id and name, or the user's SIP name
    customer: str | None = None
    user: str | None = None
    aor: str | None = None
    expires_at: float | None = None

    def sees(self, customer: str) -> bool:
        """May this principal read or change `customer`'s resources? (users: not through
        the customer routes; their own resources are under /me)"""
        if self.role is Role.OPERATOR:
            return True
        return self.role is Role.CUSTOMER_ADMIN and self.customer == customer

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OPERATOR, Role.CUSTOMER_ADMIN)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_key(data_dir: Path) -> bytes:
    """The session signing key of this data directory (created once, mode 0600)."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class SessionTokens:
    """Issues and verifies users' session tokens (HMAC-SHA256 over the payload)."""

    def __init__(self, key: bytes, lifetime: float = SESSION_SECONDS) -> None:
        self._key = key
        self.lifetime = lifetime
        self._revoked: dict[str, float] = {}  # signature -> expiry

    def issue(self, account: Account, customer: str, number: str, now: float) -> tuple[str, float]:
        expires = now + self.lifetime
        payload = {"u": account.username, "r": account.realm, "c": customer, "n": number,
                   "a": account.aor, "exp": round(expires, 3), "j": secrets.token_hex(8)}
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{SESSION_PREFIX}{body}.{self._sign(body)}", expires

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def verify(self, token: str, now: float) -> Principal | None:
        """The user of a valid, unexpired, not revoked token; None otherwise."""
        if not token.startswith(SESSION_PREFIX):
            return None
        body, _, sig = token[len(SESSION_PREFIX):].partition(".")
        if not body or not sig or not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            payload: dict[str, Any] = json.loads(_unb64(body))
            expires = float(payload["exp"])
            principal = Principal(Role.USER, str(payload["u"]), customer=str(payload["c"]),
                                  user=str(payload["n"]), aor=str(payload["a"]),
                                  expires_at=expires)
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= now or sig in self._revoked:
            return None
        return principal

    def revoke(self, token: str, now: float) -> None:
        principal = self.verify(token, now)
        if principal is None or principal.expires_at is None:
            return
        self._revoked = {s: e for s, e in self._revoked.items() if e > now}
        self._revoked[token.rpartition(".")[2]] = principal.expires_at


_sessions: SessionTokens | None = None


def install_sessions(sessions: SessionTokens | None) -> None:
    """Make `sessions` the switch's verifier (the HTTP API does it at start)."""
    global _sessions
    _sessions = sessions


def verify_session(token: str, now: float | None = None) -> Principal | None:
    """A user's session token (from `POST /api/v1/session`) -> its Principal, or None when
    it is not valid here (bad signature, expired, logged out, or no API running)."""
    if _sessions is None:
        return None
    return _sessions.verify(token, time.time() if now is None else now)


def env_admin_token(given: str) -> bool:
    """Is `given` the operator token of the environment (`WTE_ADMIN_TOKEN`)?"""
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


class LoginRefused(Exception):
    """A refused login: 401, or 429 with `retry_after` once the guard blocks."""

    def __init__(self, status: int, retry_after: int | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


async def check_password(guard: AuthFailureGuard, find: Any, source: str, username: str,
                         realm: str, password: str, now: float) -> Account:
    """The account of `username@realm` if `password` matches its stored HA1, through the
    failure guard of SIP digest (devices.guard): failures are counted per source and per
    account, answered late once slowed, refused with 429 once blocked. An unknown user
    costs the same work as a known one (no user enumeration)."""
    key = f"{username}@{realm}"
    verdict = guard.check(source, now, account=key)
    if verdict.blocked:
        log.info("api login refused (guard) source=%s user=%s", printable(source),
                 printable(username))
        raise LoginRefused(429, max(1, round(verdict.delay)))
    account: Account | None = find(username, realm)
    expected = account.ha1_md5 if account else "0" * 32
    if not hmac.compare_digest(ha1(username, realm, password, "MD5"), expected) \
            or account is None:
        after = guard.record_failure(source, now, account=key)
        log.info("api login failed source=%s user=%s", printable(source), printable(username))
        delay = max(verdict.delay, after.delay if not after.blocked else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        raise LoginRefused(401)
    guard.record_success(source, now, account=key)
    return account


async def bad_token(guard: AuthFailureGuard | None, source: str, now: float) -> int | None:
    """Count a wrong token for `source` in the guard; the Retry-After (429) once blocked."""
    if guard is None:
        return None
    verdict = guard.check(source, now)
    if verdict.blocked:
        return max(1, round(verdict.delay))
    after = guard.record_failure(source, now)
    delay = max(verdict.delay, after.delay if not after.blocked else 0.0)
    if delay > 0:
        await asyncio.sleep(delay)
    return None
