"""Digest authentication for SIP (RFC 3261 section 22, RFC 7616, RFC 8760). Pure: time is passed in.

Challenges offer MD5 and, to most clients, SHA-256, with qop=auth, one header per
algorithm sharing one nonce (RFC 8760 section 2.4, RFC 7616 section 3.7). Which algorithms
are offered, and which comes FIRST, is a per-client policy (`offer_order`), because that
decides whether a phone can register at all:

- RFC 7616 section 3.7 and RFC 8760 section 2.4 let the server list the algorithms in its
  order of preference and ask the client to use the topmost one it supports. Many deployed
  clients do not: sipsak (Debian 12) answers the FIRST challenge whatever it is, and most
  desk phones and softphones (linphone, MicroSIP, Yealink, Snom, Cisco SPA, Grandstream,
  Gigaset, PJSIP before 2.15...) only know MD5. So by default **MD5 comes first** and
  SHA-256 second: what every one of them accepts. Note that this makes clients that follow
  the RFC (the topmost supported one, as PJSIP does) use MD5 too: SHA-256 is obtained only
  by putting it first, for the clients below.
- **MD5 only** to clients that fail on the mere presence of a challenge they cannot compute:
  baresip (libre, Debian 12's 1.0.0) walks every WWW-Authenticate and aborts the request
  (ENOSYS) on the first non-MD5 one, whatever the order.
- **SHA-256 first** for a client known to support it: a PJSIP User-Agent of version 2.15
  or later ("PJSUA v2.15.1 ..."; PJSIP takes the topmost challenge it supports and computes
  SHA-256 since 2.15), or a versionless pjsua2 name (what pjsua2 applications such as our
  test phones set), our own scenario client, or a User-Agent that already
  authenticated with SHA-256 here (learned in `verify`, bounded LRU): that exact software
  supports SHA-256, so SHA-256 first cannot lock it out whichever challenge it takes.
- The policy never depends on whether the user exists (the challenge must not reveal it).

Callers pass the request being challenged (`challenge_headers(..., request=req)`). A caller
that does not gets the policy for the request of the `verify` call just before it, when
that call found no usable credentials (the verify-then-challenge sequence of every
driver, with no await in between); with neither, MD5 first.

Nonces are stateless and signed:

    nonce = "<timestamp hex>.<32 random hex digits>.<BLAKE2b-128 keyed(secret, ts.rand.realm) b64url>"

so any process holding the secret can check one without a lookup, a nonce is bound to its
realm, and its age is read from it (RFC 7616 section 3.3 suggests exactly this shape). The
only state is the highest nonce-count seen per nonce (RFC 7616 section 3.4.5, replay
protection), kept in a bounded LRU; a nonce evicted from it is no longer accepted.

Outcomes and what a caller answers:

- NO_CREDENTIALS: no Digest credentials for this realm -> 401/407 with a fresh challenge.
  Not a failure (the normal first round of every registration).
- STALE: the nonce is expired, replayed (nc not increasing), or was not issued by this
  secret (e.g. before a restart) -> 401/407 with `stale=true`; not a failure. For an
  expired or replayed nonce STALE is said only when the response was right (RFC 7616
  section 3.3, stale), otherwise FAILED.
- FAILED: wrong response, unknown user, malformed credentials -> the same answer whatever
  the reason. An unknown user name is hashed against a dummy HA1 so that the work done is
  the same as for a known one (nothing tells which extensions exist).
- OK: `account` is set.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import re
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from switch.sip import Request, SipUri, parse_uri
from switch.sip.errors import SipParseError
from switch.sip.randomness import random_hex

from .accounts import Account, AccountDirectory, hash_hex
from .authparams import DigestParseError, parse_auth_params

__all__ = ["AuthOutcome", "AuthResult", "DigestAuthenticator", "DigestParseError",
           "parse_auth_params"]

_HEX_LEN = {"MD5": 32, "SHA-256": 64}
# Accepted algorithm tokens -> (base algorithm, session variant) (RFC 7616 section 3.4.2).
_ALGORITHMS = {
    "MD5": ("MD5", False), "MD5-SESS": ("MD5", True),
    "SHA-256": ("SHA-256", False), "SHA-256-SESS": ("SHA-256", True),
}
OFFERED = ("SHA-256", "MD5")  # both, always (RFC 8760 section 2.4)
MD5_FIRST = ("MD5", "SHA-256")  # the default order: every common client accepts it
MD5_ONLY = ("MD5",)  # clients that abort on a challenge they cannot compute
SHA256_FIRST = OFFERED  # clients known to use SHA-256
# PJSIP family User-Agents, with the version when given ("PJSUA v2.15.1", "PJSIP/2.14").
_PJSIP_AGENT = re.compile(r"\bpj(?:sua2?|sip)\b(?:[\s/-]+v?(\d+)\.(\d+))?", re.IGNORECASE)
_PJSIP_SHA256 = (2, 15)  # the first PJSIP release that computes SHA-256 digests


def _knows_sha256(agent: str) -> bool:
    """A User-Agent known to support SHA-256 digests (see the module docstring)."""
    if agent.startswith("wte-scenario"):
        return True  # scenarios.digest_client
    m = _PJSIP_AGENT.search(agent)
    if m is None:
        return False
    if m.group(1) is None:
        return True  # a pjsua2 application naming itself: the current API
    return (int(m.group(1)), int(m.group(2))) >= _PJSIP_SHA256
# User-Agents of software that fails when any challenge is not MD5 (libre's digest client).
_MD5_ONLY = re.compile(r"\bbaresip\b", re.IGNORECASE)
_MAX_CLOCK_SKEW = 5.0  # a nonce "from the future" beyond this was not issued by us
_MAX_TEMPLATES = 256  # cached challenge texts (realm x order x stale)


class AuthOutcome(Enum):
    OK = "ok"
    NO_CREDENTIALS = "no-credentials"
    STALE = "stale"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: AuthOutcome
    account: Account | None = None
    username: str | None = None  # as claimed in the credentials (for logs), never trusted
    algorithm: str | None = None


def _client_key(request: Request, agent: str) -> str:
    """Who a client is for the algorithm policy: its exact User-Agent (firmware included).
    Not the user it claims: a learned (user, agent) pair would make the challenge differ
    between an existing and an unknown user with the same software (an enumeration oracle)."""
    return agent


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data16: bytes) -> str:
    """base64url of 16 bytes without its padding (22 characters), without the base64
    module's Python layers."""
    return binascii.b2a_base64(data16, newline=False)[:22].translate(_URLSAFE).decode("ascii")


@functools.lru_cache(maxsize=1024)
def _agent_order(agent: str) -> tuple[str, ...] | None:
    """The offer order a User-Agent's name alone decides (MD5 only, SHA-256 first), or
    None when it depends on what was learned. Cached: a busy switch sees a few hundred
    distinct User-Agents, and two regex searches per challenge were a visible cost."""
    if _MD5_ONLY.search(agent):
        return MD5_ONLY
    if _knows_sha256(agent):
        return SHA256_FIRST
    return None


class DigestAuthenticator:
    """Issues challenges and verifies Authorization / Proxy-Authorization credentials."""

    def __init__(self, secret: bytes, *, nonce_ttl: float = 300.0,
                 max_tracked_nonces: int = 100_000, max_learned_clients: int = 10_000) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        self._secret = secret
        # BLAKE2b in keyed mode is a MAC by design (RFC 7693 section 2.5) and costs a third
        # of HMAC-SHA-256 (a profile put nonce generation at 12 % of a 401 challenge); its
        # key is at most 64 bytes
        mac_key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
        # the keyed state, copied per MAC: the key block is compressed once, not per nonce
        self._mac_state = hashlib.blake2b(key=mac_key, digest_size=16)
        # (realm, order, stale) -> the text around the nonce of each challenge header: the
        # realm quoting and the constant parameters are built once (bounded: realms come
        # from request URIs)
        self._templates: dict[tuple[str, tuple[str, ...], bool],
                              tuple[tuple[str, str], ...]] = {}
        self.nonce_ttl = nonce_ttl
        self._max_tracked = max_tracked_nonces
        # nonce -> highest nc seen; insertion order ~ first use order (LRU on use)
        self._nc: OrderedDict[str, int] = OrderedDict()
        # nonces issued at or before this timestamp and not tracked were evicted: refuse them
        self._evicted_floor = -1
        # User-Agents that authenticated with SHA-256: offered SHA-256 first
        self._sha256_clients: OrderedDict[str, None] = OrderedDict()
        self._max_learned = max_learned_clients
        # the request of the last verify() that found no usable credentials (one shot)
        self._unanswered: Request | None = None

    # -- nonces --

    def _mac(self, body: str, realm: str) -> str:
        mac = self._mac_state.copy()
        mac.update(f"{body}.{realm}".encode())
        return _b64(mac.digest())

    def make_nonce(self, realm: str, now: float) -> str:
        body = f"{int(now):x}.{random_hex(32)}"
        return f"{body}.{self._mac(body, realm)}"

    def _nonce_time(self, nonce: str, realm: str) -> int | None:
        """The issue time of a nonce this secret signed for `realm`, else None."""
        parts = nonce.split(".")
        if len(parts) != 3 or len(parts[0]) > 12:
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body, realm), parts[2]):
            return None
        try:
            return int(parts[0], 16)
        except ValueError:
            return None

    # -- challenges (RFC 7616 section 3.3, RFC 3261 section 22.1) --

    def challenge_headers(self, realm: str, now: float, *, stale: bool = False,
                          proxy: bool = False,
                          request: Request | None = None) -> list[tuple[str, str]]:
        """One challenge per algorithm sharing one nonce, in the order `offer_order` picks
        for the client that sent `request` (see the module docstring when it is None)."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.make_nonce(realm, now)
        unanswered, self._unanswered = self._unanswered, None  # one shot either way
        if request is None:
            request = unanswered
        order = MD5_FIRST if request is None else self.offer_order(request)
        key = (realm, order, stale)
        parts = self._templates.get(key)
        if parts is None:
            if len(self._templates) >= _MAX_TEMPLATES:
                self._templates.clear()
            tail = ", stale=true" if stale else ""
            parts = self._templates[key] = tuple(
                (f'Digest realm={_quote(realm)}, nonce="',
                 f'", algorithm={alg}, qop="auth"{tail}')
                for alg in order)
        return [(name, head + nonce + rest) for head, rest in parts]

    def offer_order(self, request: Request) -> tuple[str, ...]:
        """The policy of the module docstring: MD5 only for a client that aborts on other
        challenges; SHA-256 first for a User-Agent known to support it or a
        User-Agent seen authenticating with SHA-256; MD5 first otherwise."""
        agent = request.headers.get("User-Agent") or ""
        if not agent:
            return MD5_FIRST
        fixed = _agent_order(agent)
        if fixed is not None:
            return fixed
        if _client_key(request, agent) in self._sha256_clients:
            return SHA256_FIRST
        return MD5_FIRST

    def _learn(self, request: Request, algorithm: str) -> None:
        """Remember a client that authenticated with SHA-256 (bounded, LRU)."""
        agent = request.headers.get("User-Agent") or ""
        if algorithm != "SHA-256" or not agent:
            return
        key = _client_key(request, agent)
        clients = self._sha256_clients
        clients[key] = None
        clients.move_to_end(key)
        while len(clients) > self._max_learned:
            clients.popitem(last=False)

    # -- verification (RFC 7616 section 3.4) --

    def _dummy_ha1(self, username: str, realm: str, algorithm: str) -> str:
        mac = hmac.new(self._secret, f"dummy:{username}:{realm}".encode(), hashlib.sha256)
        return mac.hexdigest()[: _HEX_LEN[algorithm]]

    def verify(self, request: Request, realm: str, directory: AccountDirectory, now: float,
               *, proxy: bool = False) -> AuthResult:
        result = self._verify(request, realm, directory, now, proxy)
        needs_challenge = result.outcome in (AuthOutcome.NO_CREDENTIALS, AuthOutcome.STALE)
        self._unanswered = request if needs_challenge else None
        return result

    def _verify(self, request: Request, realm: str, directory: AccountDirectory, now: float,
                proxy: bool) -> AuthResult:
        header = "Proxy-Authorization" if proxy else "Authorization"
        params: dict[str, str] | None = None
        for raw in request.headers.get_raw(header):
            try:
                scheme, p = parse_auth_params(raw)
            except DigestParseError:
                continue
            if scheme == "digest" and p.get("realm") == realm:
                params = p
                break
        if params is None:
            return AuthResult(AuthOutcome.NO_CREDENTIALS)
        username = params.get("username")
        failed = AuthResult(AuthOutcome.FAILED, None, username)
        nonce, uri, response = params.get("nonce"), params.get("uri"), params.get("response")
        cnonce, nc_text = params.get("cnonce"), params.get("nc")
        alg = _ALGORITHMS.get(params.get("algorithm", "MD5").upper())
        # RFC 7616 section 3.4: qop is mandatory for us (it alone gives replay protection).
        if (not username or not nonce or not uri or not response or not cnonce
                or not nc_text or params.get("qop", "").lower() != "auth" or alg is None
                or params.get("userhash", "false").lower() == "true"):
            return failed
        base, sess = alg
        issued = self._nonce_time(nonce, realm)
        if issued is None or issued > now + _MAX_CLOCK_SKEW:
            return AuthResult(AuthOutcome.STALE, None, username, base)
        try:
            nc = int(nc_text, 16)
        except ValueError:
            return failed
        if len(nc_text) != 8 or not self._uri_matches(uri, request):
            return failed
        account = directory.find(username, realm)
        ha1 = account.ha1_for(base) if account is not None else self._dummy_ha1(username, realm, base)
        if sess:
            ha1 = hash_hex(base, f"{ha1}:{nonce}:{cnonce}")
        ha2 = hash_hex(base, f"{request.method}:{uri}")
        expected = hash_hex(base, f"{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}")
        good = hmac.compare_digest(expected, response.lower())
        if not good or account is None:
            return failed
        if now - issued > self.nonce_ttl:
            return AuthResult(AuthOutcome.STALE, None, username, base)
        if not self._accept_nc(nonce, issued, nc, now):
            return AuthResult(AuthOutcome.STALE, None, username, base)
        self._learn(request, base)
        return AuthResult(AuthOutcome.OK, account, username, base)

    @staticmethod
    def _uri_matches(uri: str, request: Request) -> bool:
        """digest-uri must name the Request-URI (RFC 7616 section 3.4.6); compared loosely
        on scheme and host because phones differ in the parameters they repeat."""
        try:
            parsed = parse_uri(uri)
        except SipParseError:
            return False
        target = request.uri
        if isinstance(parsed, SipUri) and isinstance(target, SipUri):
            return parsed.host == target.host
        return str(parsed) == str(target)

    def _accept_nc(self, nonce: str, issued: int, nc: int, now: float) -> bool:
        """RFC 7616 section 3.4.5: each nonce-count may be used once, increasing."""
        seen = self._nc.get(nonce)
        if seen is None:
            if issued <= self._evicted_floor:
                return False  # its history was forgotten: cannot tell a replay apart
        elif nc <= seen:
            return False
        self._nc[nonce] = nc
        self._nc.move_to_end(nonce)
        self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        while len(self._nc) > self._max_tracked:
            old, _ = self._nc.popitem(last=False)
            self._evicted_floor = max(self._evicted_floor, int(old.split(".", 1)[0], 16))
        # expired nonces are refused by age anyway; drop them from the front
        limit = now - self.nonce_ttl
        while self._nc:
            first = next(iter(self._nc))
            if int(first.split(".", 1)[0], 16) >= limit:
                break
            del self._nc[first]

    def tracked_nonces(self) -> int:
        return len(self._nc)
