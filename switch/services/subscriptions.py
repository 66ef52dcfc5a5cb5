"""The subscription service (issue 17): SUBSCRIBE, PUBLISH and the NOTIFYs they lead to.

RFC 6665 subscriptions to three event packages: `dialog` (RFC 4235, busy lamp field with
pickup display), `presence` (RFC 3856, open/closed from registrations, in a call, DND, or
what the user's phone PUBLISHed, RFC 3903) and `message-summary` (RFC 3842, counts from
voicemail through `MailboxCounts`).

- Authentication: the digest rules of INVITE (`switch.services.caller.authenticate`, 407).
- Authorization: a user watches users of its own customer only, and its own mailbox only.
  A target outside the customer and a target that does not exist get the same 403 from the
  same code path (the lookup only ever searches the watcher's customer): no enumeration.
- Limits per watching user and per source address: 403 (see `LimitExceeded`).
- Fan-out: a change builds its body once per package and sends one NOTIFY per watcher
  through client transactions; no database write per NOTIFY.
- Restart: each subscription is written when created, refreshed or removed; at start the
  unexpired ones are reloaded and re-NOTIFYed with the current state, so phones keep their
  lamps without re-subscribing (cheaper than terminating them all with
  reason=deactivated, which would make every phone re-SUBSCRIBE and be challenged at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from dialplan import User
from switch.b2bua.legs import LocalAddress
from switch.call_targets import aor_key
from switch.dialog.dialog import Dialog, DialogState
from switch.runtime import ServerRequest, SipRuntime
from switch.services.caller import authenticate
from switch.services.ports import (
    Accounts,
    CallerAuthority,
    Locations,
    MailboxCounts,
    NoMailboxes,
    PlanSource,
)
from switch.sip import (
    Headers,
    Request,
    Response,
    SipError,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_name_addr,
    parse_uri,
    uri_user,
)
from switch.subscription import (
    PACKAGES,
    DialogDirection,
    Party,
    PresenceSnapshot,
    Subscription,
    SubscriptionTable,
    TerminationReason,
    dialog_info_body,
    message_summary_body,
    negotiate_expires,
    pidf_body,
)
from switch.subscription.bodies import with_version
from switch.subscription.resources import Publication, UserActivity
from switch.subscription.state import SubState
from switch.subscription.store import RESTART_GAP, StoredSubscription, SubscriptionRepository
from switch.transaction import Peer

log = logging.getLogger("switch.subscriptions")

ALLOW_EVENTS = ", ".join(PACKAGES)
# Answers to a NOTIFY that end the subscription (RFC 6665 4.2.2, RFC 5057 section 5.1).
_FATAL = frozenset({403, 404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604})
Body = bytes | tuple[bytes, bytes]  # a finished body, or dialog-info parts around a version


@dataclass(frozen=True, slots=True)
class SubscriptionLimits:
    """`switch.subscriptions` settings (switch.settings.SubscriptionSettings)."""

    min_expires: int = 60
    max_expires: int = 3600
    max_per_user: int = 200
    max_per_source: int = 2000


@dataclass(slots=True)
class _Live:
    """The adapter's part of one subscription: its dialog and where its NOTIFYs go."""

    sub: Subscription
    dialog: Dialog
    peer: Peer


def _event_package(req: Request) -> str:
    """The package of the Event header (RFC 6665 8.2.1: token, parameters after ';')."""
    return (req.headers.get("Event") or "").split(";", 1)[0].strip().lower()


def _event_id(req: Request) -> str:
    """The Event header's `id` parameter, echoed in every NOTIFY (RFC 6665 8.2.1)."""
    for param in (req.headers.get("Event") or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "id":
            return value.strip()[:64]
    return ""


class SubscriptionService:
    """Notifier of the switch's users' dialog, presence and message-summary state."""

    def __init__(self, runtime: SipRuntime, local: LocalAddress, *, plan: PlanSource,
                 accounts: Accounts, authority: CallerAuthority, locations: Locations,
                 repository: SubscriptionRepository | None,
                 limits: SubscriptionLimits = SubscriptionLimits(),
                 mailboxes: MailboxCounts | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.local = local
        self.plan = plan
        self.accounts = accounts
        self.authority = authority
        self.locations = locations
        self.repository = repository
        self.limits = limits
        self.mailboxes: MailboxCounts = mailboxes or NoMailboxes()
        self.clock = wall_clock
        self.table = SubscriptionTable(max_per_watcher=limits.max_per_user,
                                       max_per_source=limits.max_per_source)
        self.activity = UserActivity()
        self.live: dict[str, _Live] = {}
        self.by_dialog: dict[tuple[str, str], str] = {}  # (Call-ID, our tag) -> id
        self.notifies_sent = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._writes: asyncio.Queue[tuple[str, StoredSubscription | str]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    # -- lifecycle --

    async def start(self) -> None:
        self._writes = asyncio.Queue()
        restored = 0
        if self.repository is not None:
            now = self.clock()
            await self.repository.delete_expired(now)
            for stored in await self.repository.load_unexpired(now):
                self._restore(stored)
                restored += 1
            self._writer = asyncio.create_task(self._write_loop())
        self.locations.location.observer = self.registration_changed
        self.runtime.register_handler("SUBSCRIBE", self.on_subscribe)
        self.runtime.register_handler("PUBLISH", self.on_publish)
        log.info("restored %d subscriptions from the database", restored)
        if restored:
            self._spawn(self._renotify_when_listening())
        self._arm()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._writes is not None and self._writer is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._writes.join(), 5.0)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renotify_when_listening(self) -> None:
        """Restored subscriptions get the current state once the transports are up."""
        for _ in range(200):
            if self.runtime.udp is not None:
                break
            await asyncio.sleep(0.05)
        now = self.clock()
        for live in list(self.live.values()):
            sub = live.sub
            if self.accounts.user_for_aor(sub.resource) is None \
                    or self.accounts.user_for_aor(sub.watcher) is None:
                # the plan changed while the switch was down: the user is gone (RFC 6665
                # 4.2.2 noresource: do not re-subscribe)
                self._end(live, TerminationReason.NORESOURCE, now)
                continue
            self._notify_one(live, self._body(sub.package, sub.resource, now), now)

    # -- SUBSCRIBE (RFC 6665 4.2.1) --

    def on_subscribe(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        req = sreq.request
        package = _event_package(req)
        if package not in PACKAGES:
            # RFC 6665 4.2.1: an unknown package answers 489 with the ones we know
            raise SipError(489, "Bad Event", headers=(("Allow-Events", ALLOW_EVENTS),))
        now = self.clock()
        check = authenticate(runtime, sreq, self.plan.plan, self.accounts, self.authority, now)
        if check is None:
            return
        if check.user is None:
            self._forbidden(sreq)
            return
        watcher = aor_key(check.user)
        if req.to.tag is not None:
            self._in_dialog(sreq, package, watcher, now)
            return
        target = self._resolve(check.user, req, package)
        if target is None:
            self._forbidden(sreq)
            return
        rules = PACKAGES[package]
        expires = negotiate_expires(req.expires, default=rules.default_expires,
                                    minimum=self.limits.min_expires,
                                    maximum=self.limits.max_expires)
        source = sreq.peer.host
        if expires > 0:
            self.table.check_limits(watcher, source)  # 403 past a limit
        tag = new_tag()
        response = make_response(req, 200, to_tag=tag, headers=[
            ("Contact", self.local.contact(sreq.peer.transport)),
            ("Expires", str(expires))])
        dialog = Dialog.uas(req, response)  # 400 without a Contact (RFC 6665 4.1.1)
        sub = Subscription(f"{tag}{secrets.token_hex(4)}", package, aor_key(target), watcher,
                           source, now + expires)
        if event_id := _event_id(req):
            sub.extra["id"] = event_id
        live = _Live(sub, dialog, sreq.peer)
        runtime.respond(sreq.key, response)
        if expires == 0:
            # a fetch (RFC 6665 4.4.3): one NOTIFY with the state, and nothing kept
            sub.terminate(TerminationReason.TIMEOUT)
            self._notify_one(live, self._body(package, sub.resource, now), now)
            return
        sub.authorize()  # our policy decided above: same customer (RFC 6665 4.2.1.2)
        self._add(live)
        self._store(live)
        log.info("subscription %s: %s watches %s (%s) for %d s", sub.id, watcher,
                 sub.resource, package, expires)
        self._notify_one(live, self._body(package, sub.resource, now), now)
        self._arm()

    def _in_dialog(self, sreq: ServerRequest, package: str, watcher: str, now: float) -> None:
        """A refresh or an un-SUBSCRIBE (Expires: 0) inside an existing subscription."""
        req = sreq.request
        sub_id = self.by_dialog.get((req.call_id, req.to.tag or ""))
        live = self.live.get(sub_id) if sub_id is not None else None
        if live is None or not live.dialog.matches(req) or live.sub.watcher != watcher or live.sub.package != package:
            self.runtime.respond(sreq.key, make_response(req, 481))
            return
        live.dialog.receive_request(req)  # CSeq order (RFC 3261 12.2.2)
        expires = negotiate_expires(req.expires, default=PACKAGES[package].default_expires,
                                    minimum=self.limits.min_expires,
                                    maximum=self.limits.max_expires)
        self.runtime.respond(sreq.key, make_response(req, 200, headers=[
            ("Contact", self.local.contact(sreq.peer.transport)),
            ("Expires", str(expires))]))
        sub = live.sub
        if expires == 0:
            self._end(live, TerminationReason.TIMEOUT, now)  # RFC 6665 4.2.1.4
            return
        live.peer = sreq.peer  # the phone may have moved (NAT rebinding)
        sub.refresh(now + expires)
        self.table.refreshed(sub)
        self._store(live)
        # RFC 6665 4.2.1.2: a refresh is answered with a NOTIFY of the current state
        self._notify_one(live, self._body(package, sub.resource, now), now)
        self._arm()

    def _forbidden(self, sreq: ServerRequest) -> None:
        """The one refusal for a target outside the customer and for an unknown one."""
        self.runtime.respond(sreq.key, make_response(sreq.request, 403, "Forbidden",
                                                     to_tag=new_tag()))

    def _resolve(self, watcher: User, req: Request, package: str) -> User | None:
        """The watched user, searched in the watcher's customer only: by full number, by
        extension of the watcher's site, or by public number. Every lookup runs whatever
        the outcome, so a miss costs what a hit does."""
        number = uri_user(req.uri) or ""
        customer = watcher.customer
        by_full = customer.by_full_number.get(number)
        by_ext: User | None = None
        by_public: User | None = None
        for site in customer.sites:
            for user in site.users:
                if site is watcher.site and user.extension == number:
                    by_ext = user
                if user.public_number is not None and user.public_number.lstrip("+") \
                        == number.lstrip("+"):
                    by_public = user
        found = by_full if isinstance(by_full, User) else by_ext or by_public
        if found is not None and package == "message-summary" and found is not watcher:
            return None  # a mailbox is watched by its owner only
        return found

    # -- PUBLISH (RFC 3903, presence only, from the user's own phone) --

    def on_publish(self, runtime: SipRuntime, sreq: ServerRequest) -> None:
        req = sreq.request
        if _event_package(req) != "presence":
            raise SipError(489, "Bad Event", headers=(("Allow-Events", "presence"),))
        now = self.clock()
        check = authenticate(runtime, sreq, self.plan.plan, self.accounts, self.authority, now)
        if check is None:
            return
        user = check.user
        target = self._resolve(user, req, "presence") if user is not None else None
        if user is None or target is not user:
            self._forbidden(sreq)  # a user publishes its own presence only
            return
        key = aor_key(user)
        expires = negotiate_expires(req.expires, default=3600, minimum=self.limits.min_expires,
                                    maximum=self.limits.max_expires)
        match = req.headers.get("SIP-If-Match")
        old = self.activity.publication(key, match, now) if match else None
        if match and old is None:
            raise SipError(412, "Conditional Request Failed")  # RFC 3903 6 step 4
        if expires == 0:
            if match:
                self.activity.unpublish(key, match)
            runtime.respond(sreq.key, make_response(req, 200, to_tag=new_tag(), headers=[
                ("SIP-ETag", match or new_tag()), ("Expires", "0")]))
            self._changed("presence", key, now)
            return
        if req.body:
            ctype = (req.content_type or "").split(";")[0].strip().lower()
            if ctype != "application/pidf+xml":
                raise SipError(415, "Unsupported Media Type",
                               headers=(("Accept", "application/pidf+xml"),))
            body, content_type = req.body, ctype
        elif old is not None:  # a refresh keeps the document (RFC 3903 section 4.3)
            body, content_type = old.body, old.content_type
        else:
            raise SipError(400, "Missing Presence Document")
        etag = secrets.token_hex(8)
        self.activity.publish(key, Publication(etag, body, content_type, now + expires), match)
        runtime.respond(sreq.key, make_response(req, 200, to_tag=new_tag(), headers=[
            ("SIP-ETag", etag), ("Expires", str(expires))]))
        self._changed("presence", key, now)

    # -- state sources --

    def registration_changed(self, aor: str, registered: bool) -> None:
        """The location service's observer: a user's first binding came or its last went."""
        try:
            self._changed("presence", aor, self.clock())
        except Exception:
            log.exception("presence update for %s failed", aor)

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        self.activity.ringing(user, call_id, DialogDirection(direction),
                              Party(remote_uri, remote_display))
        self._dialog_changed(user)

    def leg_answered(self, user: str, call_id: str) -> None:
        if self.activity.answered(user, call_id) is not None:
            self._dialog_changed(user)

    def leg_ended(self, user: str, call_id: str) -> None:
        if self.activity.ended(user, call_id) is not None:
            self._dialog_changed(user)
            self.activity.forget_terminated(user)

    def dnd_changed(self, user: str, on: bool) -> None:
        """Do-not-disturb of `user` (aor key) changed (for the DND feature to call)."""
        if self.activity.set_dnd(user, on):
            self._changed("presence", user, self.clock())

    def message_waiting_changed(self, user: str) -> None:
        """Voicemail's hook: `user`'s (aor key) counts changed. Its message-summary
        subscribers get a NOTIFY, and every registered device of the user an unsolicited
        one (phones configured for MWI without subscribing)."""
        now = self.clock()
        try:
            body = self._changed("message-summary", user, now)
            if body is None:
                body = self._body("message-summary", user, now)
            self._unsolicited_mwi(user, body if isinstance(body, bytes) else b"", now)
        except Exception:
            log.exception("message-waiting update for %s failed", user)

    def _dialog_changed(self, user: str) -> None:
        try:
            now = self.clock()
            self._changed("dialog", user, now)
            self._changed("presence", user, now)
        except Exception:
            log.exception("dialog update for %s failed", user)

    # -- NOTIFY --

    def _entity(self, resource: str) -> str:
        user = self.accounts.user_for_aor(resource)
        if user is None:
            number = resource.partition(":")[2]
            return f"sip:{number}@{self.local.host}"
        return f"sip:{user.full_number}@{user.customer.sip_domain}"

    def _body(self, package: str, resource: str, now: float) -> Body:
        """The current state of `resource` for `package`, built once for all its watchers."""
        entity = self._entity(resource)
        if package == "dialog":
            return dialog_info_body(entity, self.activity.dialogs(resource))
        if package == "presence":
            registered = bool(self.locations.location.current(resource, now))
            published = self.activity.latest_publication(resource, now)
            if published is not None and registered:
                return published.body
            return pidf_body(entity, PresenceSnapshot(
                registered, self.activity.in_call(resource), self.activity.dnd(resource)))
        new, old = self.mailboxes.counts(resource)
        return message_summary_body(entity, new, old)

    def _changed(self, package: str, resource: str, now: float) -> Body | None:
        """Fan-out: one body for every watcher of `resource`; None when nobody watches."""
        watchers = self.table.watchers(package, resource)
        if not watchers:
            return None
        body = self._body(package, resource, now)
        for sub in watchers:
            live = self.live.get(sub.id)
            if live is not None:
                self._notify_one(live, body, now)
        return body

    def _notify_one(self, live: _Live, body: Body, now: float) -> None:
        sub = live.sub
        payload = with_version(body, sub.next_version()) if isinstance(body, tuple) else body
        request = live.dialog.create_request(
            "NOTIFY", self.local.via_for(live.peer.transport),
            headers=(("Event", f"{sub.package};id={sub.extra['id']}" if "id" in sub.extra
                      else sub.package),
                     ("Subscription-State", sub.state_header(now))),
            body=payload, content_type=PACKAGES[sub.package].content_type)
        self.notifies_sent += 1
        self.runtime.send_request(request, live.peer,
                                  functools.partial(self._notify_answered, sub.id))

    def _notify_answered(self, sub_id: str, response: Response) -> None:
        if response.status not in _FATAL:
            return
        live = self.live.get(sub_id)
        if live is not None:
            log.info("subscription %s ended by its NOTIFY's %d", sub_id, response.status)
            self._drop(live)

    def _unsolicited_mwi(self, user: str, body: bytes, now: float) -> None:
        entity = self._entity(user)
        for binding in self.locations.location.current(user, now):
            peer = Peer(*binding.destination())
            items = [("Via", self.local.via(peer.transport, new_branch())),
                     ("Max-Forwards", "70"),
                     ("From", f"<{entity}>;tag={new_tag()}"), ("To", f"<{entity}>"),
                     ("Call-ID", new_call_id()), ("CSeq", "1 NOTIFY"),
                     ("Contact", self.local.contact(peer.transport)),
                     ("Event", "message-summary"), ("Subscription-State", "active"),
                     ("Content-Type", PACKAGES["message-summary"].content_type)]
            request = Request("NOTIFY", parse_uri(binding.contact), Headers(items), body)
            self.notifies_sent += 1
            self.runtime.send_request(request, peer)

    # -- ending and expiry --

    def _end(self, live: _Live, reason: TerminationReason, now: float) -> None:
        """A last NOTIFY saying why (RFC 6665 4.2.2), then the subscription is gone."""
        sub = live.sub
        sub.terminate(reason)
        self._notify_one(live, self._body(sub.package, sub.resource, now), now)
        self._drop(live)

    def _drop(self, live: _Live) -> None:
        sub = live.sub
        sub.terminate(sub.reason or TerminationReason.DEACTIVATED)
        live.dialog.terminate()
        self.table.remove(sub.id)
        self.live.pop(sub.id, None)
        self.by_dialog.pop((live.dialog.call_id, live.dialog.local_tag), None)
        self._enqueue("delete", sub.id)

    def _arm(self) -> None:
        deadline = self.table.next_expiry()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.runtime.loop.call_later(max(0.0, deadline - self.clock()),
                                                   self._expire)

    def _expire(self) -> None:
        self._timer, self._timer_at = None, None
        now = self.clock()
        for sub in self.table.expired(now):
            live = self.live.get(sub.id)
            if live is not None:
                self._end(live, TerminationReason.TIMEOUT, now)
        self._arm()

    # -- storage --

    def _store(self, live: _Live) -> None:
        d, sub = live.dialog, live.sub
        self._enqueue("save", StoredSubscription(
            sub.id, sub.package, sub.resource, sub.watcher, sub.source, sub.expires_at,
            sub.version, d.call_id, d.local_tag, d.remote_tag, str(d.local_uri),
            str(d.remote_uri), str(d.remote_target), tuple(str(r) for r in d.route_set),
            d.local_seq, d.remote_seq, live.peer.transport, live.peer.host, live.peer.port,
            sub.extra.get("id", "")))

    def _enqueue(self, op: str, item: StoredSubscription | str) -> None:
        if self._writes is not None and self.repository is not None:
            self._writes.put_nowait((op, item))

    async def _write_loop(self) -> None:
        """One writer, in order: a subscription's save never overtakes its delete."""
        assert self._writes is not None and self.repository is not None
        while True:
            op, item = await self._writes.get()
            try:
                if op == "save" and isinstance(item, StoredSubscription):
                    await self.repository.save(item)
                elif isinstance(item, str):
                    await self.repository.delete(item)
            except Exception:
                log.exception("could not store subscription change %s", op)
            finally:
                self._writes.task_done()

    def _restore(self, s: StoredSubscription) -> None:
        local_seq = (s.local_seq or 0) + RESTART_GAP
        dialog = Dialog(
            call_id=s.call_id, local_tag=s.local_tag, remote_tag=s.remote_tag,
            local_uri=parse_name_addr(s.local_uri), remote_uri=parse_name_addr(s.remote_uri),
            remote_target=parse_uri(s.remote_target),
            route_set=tuple(parse_name_addr(r) for r in s.route_set),
            local_seq=local_seq, remote_seq=s.remote_seq, secure=False, is_uac=False,
            local_contact=parse_name_addr(self.local.contact(s.transport)),
            state=DialogState.CONFIRMED)
        sub = Subscription(s.id, s.package, s.resource, s.watcher, s.source, s.expires_at,
                           SubState.ACTIVE, s.version + RESTART_GAP)
        if s.event_id:
            sub.extra["id"] = s.event_id
        self._add(_Live(sub, dialog, Peer(s.transport, s.peer_host, s.peer_port)))

    def _add(self, live: _Live) -> None:
        self.table.add(live.sub)
        self.live[live.sub.id] = live
        self.by_dialog[(live.dialog.call_id, live.dialog.local_tag)] = live.sub.id
