"""The REGISTER service: guard, digest authentication, registrar, durable bindings.

Order of work for one REGISTER (RFC 3261 section 10.3):
  1. digest authentication (RFC 7616/8760) — unknown users and wrong passwords get the same
     answer, so nothing reveals which extensions exist; a request without credentials is
     always challenged (the challenge is no oracle, and a phone behind a blocked NAT address
     must be able to send its credentials);
  2. the failure guard (devices.guard) may slow or block the source and the claimed
     account; a blocked request is refused whatever its credentials, except for an account
     already registered from that source (shared NAT);
  3. the registrar computes the binding changes;
  4. the changes are committed to the database (group commit) BEFORE the 200 OK leaves, so a
     crash after the answer never loses an acknowledged binding; then memory is updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from devices.accounts import AccountDirectory
from devices.digest import AuthOutcome, DigestAuthenticator
from devices.guard import AuthFailureGuard, Verdict
from devices.location import BindingChange, ChangeKind, LocationService
from devices.logsafe import printable
from devices.registrar import Registrar, RegistrarOutcome, Source
from switch.runtime import ServerRequest, SipRuntime
from switch.sip import Request, SipUri, make_response, new_tag
from switch.storage.bindings import SqlBindingRepository
from switch.transaction import Peer, stamp_received
from switch.webrtc.credentials import EphemeralCredentials, verify_digest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from switch.settings import SwitchSettings

log = logging.getLogger("switch.registration")


def guard_account(username: str | None, realm: str) -> str | None:
    """The key the failure guard counts an account's failures under: the claimed
    `user@realm`, whether the account exists or not (so the guard reveals nothing)."""
    return f"{username}@{realm}" if username else None


class RegistrationService:
    """Owns the location service and its durable copy; answers REGISTER."""

    def __init__(self, directory: AccountDirectory, realm_for_host: Callable[[str], str],
                 *, settings: SwitchSettings, runtime: SipRuntime, engine: AsyncEngine,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.realm_for_host = realm_for_host
        self.settings = settings
        self.runtime = runtime
        self.engine = engine  # shared with the other storage users; the switch disposes it
        self.clock = wall_clock
        self.location = LocationService()
        self.registrar: Registrar | None = None
        self.digest: DigestAuthenticator | None = None
        self.guard: AuthFailureGuard | None = None
        # issue 23: browsers' short-lived passwords, over WS/WSS only (set by the app)
        self.ephemeral: EphemeralCredentials | None = None
        self.repo: SqlBindingRepository | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # cluster (issue 22): told the changes of every REGISTER once committed, so that
        # peers reload those AoRs; must not raise
        self.committed: Callable[[Sequence[BindingChange]], None] | None = None

    async def start(self) -> None:
        """Restore the bindings (the schema is at head: the database service ran first) and
        take REGISTER."""
        s = self.settings
        self.registrar = Registrar(
            self.location, min_expires=s.registrar.min_expires,
            max_expires=s.registrar.max_expires, default_expires=s.registrar.default_expires,
            max_contacts=s.registrar.max_contacts,
        )
        self.digest = DigestAuthenticator(secrets.token_bytes(32), nonce_ttl=s.auth.nonce_ttl)
        self.guard = AuthFailureGuard(
            max_failures=s.auth.max_failures, window=s.auth.failure_window,
            block_seconds=s.auth.block_seconds, slow_after=s.auth.slow_after,
            has_binding=self.has_binding,
        )
        self.repo = SqlBindingRepository(
            self.engine, commit_delay=s.performance.binding_commit_delay)
        now = self.clock()
        restored = await self.repo.load_unexpired(now)
        self.location.load(restored)
        log.info("restored %d registrations from the database", len(restored))
        self.runtime.register_handler("REGISTER", self.handle)
        self.runtime.stateless_handlers["REGISTER"] = self.challenge_stateless
        self._sweeper = asyncio.create_task(self._sweep_loop(s.registrar.sweep_interval))

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.repo is not None:
            await self.repo.close()

    async def _sweep_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                now = self.clock()
                removed = self.location.sweep(now)
                if self.repo is not None:
                    await self.repo.delete_expired(now)
                if removed:
                    log.info("swept %d expired bindings", len(removed))
            except Exception:
                log.exception("binding sweep failed")

    def challenge_stateless(self, runtime: SipRuntime, req: Request, peer: Peer) -> bool:
        """The 401 to a REGISTER without credentials, sent statelessly as Kamailio does: a
        retransmission just gets a fresh challenge, and no transaction is kept for 32 s
        for every phone that knocks (RFC 3261 8.2.7 allows stateless responses)."""
        if "Authorization" in req.headers or self.digest is None:
            return False
        # no guard here: a blocked source is still challenged, so that a phone registered
        # from behind the same NAT address can send the credentials the guard admits
        now = self.clock()
        host = req.uri.host if isinstance(req.uri, SipUri) else ""
        headers = self.digest.challenge_headers(self.realm_for_host(host), now, request=req)
        stamped = stamp_received(req, req.top_via, peer)
        runtime.respond_stateless(req, peer, make_response(stamped, 401, to_tag=new_tag(),
                                                           headers=headers))
        return True

    def handle(self, runtime: SipRuntime, sreq: ServerRequest) -> Any:
        assert self.digest is not None and self.guard is not None and self.registrar is not None
        req = sreq.request
        now = self.clock()
        host = req.uri.host if isinstance(req.uri, SipUri) else ""
        realm = self.realm_for_host(host)
        result = verify_digest(self.digest, req, realm, self.directory, now,
                               transport=sreq.peer.transport, ephemeral=self.ephemeral)
        if result.outcome in (AuthOutcome.NO_CREDENTIALS, AuthOutcome.STALE):
            headers = self.digest.challenge_headers(
                realm, now, stale=result.outcome is AuthOutcome.STALE, request=req)
            runtime.respond(sreq.key, make_response(req, 401, to_tag=new_tag(), headers=headers))
            return None
        account_key = guard_account(result.username, realm)
        verdict = self.guard.check(sreq.peer.host, now, account=account_key)
        if verdict.blocked:
            # refused without saying whether the credentials were right: no oracle
            runtime.respond(sreq.key, make_response(req, 403, "Forbidden", to_tag=new_tag()))
            return None
        if result.outcome is not AuthOutcome.OK or result.account is None:
            after = self.guard.record_failure(sreq.peer.host, now, account=account_key)
            log.info("authentication failed source=%s:%d user=%s", sreq.peer.host,
                     sreq.peer.port, printable(result.username))
            # back-off: a SLOWED source or account gets its 403 late; a block is answered
            # at once (its delay is the time left, not a wait)
            delay = max((v.delay for v in (verdict, after) if v.verdict is Verdict.SLOW),
                        default=0.0)
            return self._deny_later(runtime, sreq, delay)
        self.guard.record_success(sreq.peer.host, now, account=account_key)
        peer = sreq.peer
        source = Source(peer.transport, peer.host, peer.port, peer.conn_id)
        outcome = self.registrar.process(req, result.account, source, now)
        if any(u.kind is ChangeKind.DELETE for u in outcome.undo):
            self._flag_nomadic(result.account.aor, peer)
        if not outcome.changes or self.repo is None:
            runtime.respond(sreq.key, outcome.response(req, new_tag()))
            return None
        return self._answer_when_stored(runtime, sreq, outcome, self.repo.submit(outcome.changes))

    def has_binding(self, account: str, source_ip: str) -> bool:
        """The guard's `has_binding`: does the account named `user@realm` have a live
        binding registered from `source_ip`? (a phone behind that NAT address)"""
        username, _, realm = account.rpartition("@")
        found = self.directory.find(username, realm) if username else None
        if found is None:
            return False
        return any(b.source_host == source_ip
                   for b in self.location.current(found.aor, self.clock()))

    def _flag_nomadic(self, aor: str, peer: Peer) -> None:
        """Issue 7: a device registering from outside its site's declared networks is
        nomadic; its emergency calls will carry the location its user declared."""
        user_for_aor = getattr(self.directory, "user_for_aor", None)
        user = user_for_aor(aor) if user_for_aor is not None else None
        if user is None or not user.site.networks:
            return
        try:
            source = ipaddress.ip_address(peer.host)
        except ValueError:
            return
        if not any(source in net for net in user.site.networks):
            log.warning("nomadic device registered user=%s site=%s source=%s:%d",
                        user.full_number, user.site.code, peer.host, peer.port)

    def _answer_when_stored(self, runtime: SipRuntime, sreq: ServerRequest,
                            outcome: RegistrarOutcome,
                            stored: asyncio.Future[None]) -> asyncio.Future[None]:
        """Answer from a done-callback on the group commit's future: 200 once the binding is
        durable, 500 and a rollback of memory on failure, without a Task and coroutines per
        REGISTER. The returned future settles once the answer has left, so
        the runtime tracks it for a graceful drain and turns an exception into a 500."""
        answered: asyncio.Future[None] = stored.get_loop().create_future()

        def on_stored(fut: asyncio.Future[None]) -> None:
            if fut.cancelled():
                answered.cancel()
                return
            try:
                exc = fut.exception()
                if exc is None:
                    runtime.respond(sreq.key, outcome.response(sreq.request, new_tag()))
                    if self.committed is not None:
                        self.committed(outcome.changes)
                else:
                    log.error("could not store bindings; answering 500", exc_info=exc)
                    assert self.registrar is not None
                    self.registrar.rollback(outcome)
                    runtime.respond(sreq.key, make_response(sreq.request, 500, to_tag=new_tag(),
                                                            headers=[("Retry-After", "10")]))
            except Exception as err:
                answered.set_exception(err)
            else:
                answered.set_result(None)

        stored.add_done_callback(on_stored)
        return answered

    async def _deny_later(self, runtime: SipRuntime, sreq: ServerRequest, delay: float) -> None:
        # The same 403 for an unknown user and a wrong password; repeated failures are slowed.
        if delay > 0:
            await asyncio.sleep(delay)
        runtime.respond(sreq.key, make_response(sreq.request, 403, "Forbidden", to_tag=new_tag()))
