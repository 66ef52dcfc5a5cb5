"""The live minute pool of each site (issue 25): every ended call is counted against its
site's pool, once, and the site's administrators are told when the pool reaches 80 % and
100 %.

`PoolService` is the call records port of the call service (`open`, `answered`, `close`)
wrapped around the CdrWriter: it forwards every event, and on `close` queues the record to
be counted. One task counts the queue in order, off the signalling path, through the store
(switch.storage.pool: rating, `rated_calls` row and pool update in one transaction, so a
record counts exactly once). A record the task could not count (database away, switch
killed before the count) is still in `call_records` once the CdrWriter has written it: the
catch-up, at start and every `rating.catch_up_seconds`, counts the records no `rated_calls`
row names.

Alerts are raised by the transaction that crosses a threshold and written with it (the
pool row keeps the highest one), so each is raised once per site and month, a restart
included: a structured log line (`minute pool alert {json}`) and, when
`rating.webhook_url` is set, a JSON POST (5 s timeout, not retried: a webhook lost to a
crash between the commit and the POST is not sent again; the log line says it failed).
E-mail is not built.

The optional per-site policy (`rating.refuse_past_pool`, `rating.refuse_not_included`: lists
of "customer/site") is `PoolAdmission`, the call admission with one more check: an outgoing
external call of such a site is refused with 403 and a Warning (and recorded, like every
refusal) once the site's pool is used up, or when its destination is charged. Emergency
calls always pass. The check reads this process's view of the pools (loaded at start,
updated by each count): with several switches sharing the database, a site may go a few
calls past its pool before every node sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from dialplan import DecisionKind, RoutingDecision, User
from dialplan.call_limits import CallLimits
from dialplan.model import Plan
from rating.bundle import PoolKey
from rating.cdr import CallRecord
from rating.export import on_net_of, sites_from_plan
from rating.live import LiveRater, LiveRating, PoolAlert, PoolState, SitePolicy
from rating.tariff import RatingConfig, load_rating
from switch.b2bua.decisions import Refuse
from switch.services.admission import CallAdmission
from switch.services.ports import CallRecords
from switch.services.webhook import post_json as post_webhook
from switch.settings import RatingSettings

log = logging.getLogger("switch.pool")

# records started this long ago may still be uncounted: the previous month's end included
CATCH_UP_WINDOW = 40 * 86400.0
FIRST_CATCH_UP = 2.0  # seconds after start: the CdrWriter replays its spool first


class PoolStore(Protocol):
    """What the service needs of the database (switch.storage.pool implements it)."""

    async def count(self, record: CallRecord, rater: LiveRater,
                    now: float | None = None) -> LiveRating | None: ...

    async def uncounted(self, since: float, limit: int = 1000) -> Sequence[CallRecord]: ...

    async def states(self, since_month: str) -> dict[PoolKey, PoolState]: ...


class PlanView(Protocol):
    @property
    def plan(self) -> Plan: ...


Poster = Callable[[str, Mapping[str, object]], None]


def post_json(url: str, event: Mapping[str, object]) -> None:
    """POST `event` as JSON (on a worker thread); failures are logged, never raised."""
    post_webhook(url, event, "minute pool webhook")


class PoolService:
    def __init__(self, records: CallRecords, store: PoolStore, plans: PlanView,
                 config: RatingConfig, *, webhook_url: str | None = None,
                 catch_up_seconds: float = 300.0, clock: Callable[[], float] = time.time,
                 post: Poster = post_json) -> None:
        self.records = records
        self.store = store
        self.plans = plans
        self.config = config
        self.webhook_url = webhook_url
        self.catch_up_seconds = catch_up_seconds
        self.clock = clock
        self.post = post
        self.counted = 0  # records counted by this process
        self._queue: asyncio.Queue[CallRecord | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._posts: set[asyncio.Future[None]] = set()
        self._post_lock = asyncio.Lock()
        self._plan: Plan | None = None
        self._rater: LiveRater | None = None
        self._busy = False
        self.used: dict[PoolKey, int] = {}  # seconds used per pool, as this process knows

    # -- the call records port: forwarded, and closed records counted --

    def open(self, record: CallRecord) -> None:
        self.records.open(record)

    def answered(self, record: CallRecord) -> None:
        self.records.answered(record)

    def close(self, record: CallRecord) -> None:
        self.records.close(record)
        if LiveRater.rateable(record):  # an unanswered call draws nothing
            self._queue.put_nowait(record)

    @property
    def idle(self) -> bool:
        """Nothing queued or being counted (tests)."""
        return self._queue.empty() and not self._busy

    # -- life cycle --

    async def start(self) -> None:
        since = time.strftime("%Y-%m", time.gmtime(self.clock() - CATCH_UP_WINDOW))
        try:
            self.used = {k: s.used for k, s in (await self.store.states(since)).items()}
        except Exception as exc:  # the database is away: the counts will fill it in
            log.warning("minute pool: pool states not loaded (%s)", type(exc).__name__)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Count what is queued (a few seconds at most); the rest is left to the catch-up
        of the next start."""
        if self._task is not None:
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("minute pool: %d ended calls left to count at the next start",
                            self._queue.qsize())
        if self._posts:
            await asyncio.wait(self._posts, timeout=5)

    # -- counting --

    def rater(self) -> LiveRater:
        """The rater of the current plan (rebuilt after a reload: sites, users, packs)."""
        plan = self.plans.plan
        if self._rater is None or plan is not self._plan:
            self._rater = LiveRater(self.config, sites_from_plan(plan), on_net_of(plan))
            self._plan = plan
        return self._rater

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_catch_up = loop.time() + min(FIRST_CATCH_UP, self.catch_up_seconds)
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(),
                                              max(0.0, next_catch_up - loop.time()))
            except TimeoutError:
                await self.catch_up()
                next_catch_up = loop.time() + self.catch_up_seconds
                continue
            if item is None:
                return
            self._busy = True
            try:
                await self.count(item)
            finally:
                self._busy = False

    async def count(self, record: CallRecord) -> LiveRating | None:
        """Count one record; a failure is logged and left to the catch-up."""
        try:
            result = await self.store.count(record, self.rater(), self.clock())
        except Exception as exc:
            log.warning("minute pool: record %s not counted yet (%s); the catch-up will",
                        record.id, type(exc).__name__)
            return None
        if result is None:
            return None
        self.counted += 1
        line = result.line
        if result.key is not None and result.state is not None:
            self.used[result.key] = result.state.used
            log.debug("minute pool %s/%s %s: record %s drew %ds, used %d of %ds",
                      line.customer, line.site, line.month, line.record_id,
                      line.drawn_seconds, result.state.used, result.size)
        for alert in result.alerts:
            self.alert(alert, record.id)
        return result

    async def catch_up(self) -> int:
        """Count the ended records no `rated_calls` row names yet; how many were counted."""
        total = 0
        since = self.clock() - CATCH_UP_WINDOW
        while True:
            try:
                batch = await self.store.uncounted(since)
            except Exception as exc:
                log.warning("minute pool: catch-up postponed (%s)", type(exc).__name__)
                return total
            counted = 0
            for record in batch:
                if await self.count(record) is not None:
                    counted += 1
            total += counted
            if len(batch) < 1000 or counted == 0:
                break
        if total:
            log.info("minute pool: %d ended calls counted by the catch-up", total)
        return total

    # -- alerts --

    def alert(self, alert: PoolAlert, record_id: str) -> None:
        event = alert.event(record_id)
        log.warning("minute pool alert %s", json.dumps(event, sort_keys=True))
        if self.webhook_url:
            task = asyncio.ensure_future(self._post_in_order(self.webhook_url, event))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)

    async def _post_in_order(self, url: str, event: Mapping[str, object]) -> None:
        """One POST at a time, in the order the alerts were raised (80 % before 100 %, even
        when one call crosses both)."""
        async with self._post_lock:
            await asyncio.to_thread(self.post, url, event)


    def refusal(self, caller: User, decision: RoutingDecision, now: float,
                policy: SitePolicy) -> str | None:
        """Why `policy` refuses this outgoing call of `caller` now; None: it may go."""
        attempt = CallRecord(
            id="admission", call_id="", caller=caller.full_number,
            callee=decision.e164 or decision.number, dialed="", decision="external",
            site=caller.site.code, customer=caller.customer.id, start=now, answer=now,
            end=now + 60.0)
        return self.rater().refusal(attempt, lambda key: self.used.get(key, 0), policy)


class PoolAdmission(CallAdmission):
    """The call limits, then the sites' pool policies (outgoing external calls only)."""

    def __init__(self, limits: CallLimits | None, pool: PoolService,
                 policies: Mapping[tuple[str, str], SitePolicy]) -> None:
        super().__init__(limits)
        self.pool = pool
        self.policies = policies

    def admit(self, call_id: str, caller: User | None, decision: RoutingDecision,
              now: float) -> Refuse | None:
        refused = super().admit(call_id, caller, decision, now)
        if refused is not None or caller is None or decision.kind is not DecisionKind.EXTERNAL:
            return refused  # emergency calls are EMERGENCY decisions: never checked
        policy = self.policies.get((caller.customer.id, caller.site.code))
        if policy is None:
            return None
        reason = self.pool.refusal(caller, decision, now, policy)
        if reason is None:
            return None
        log.info("minute pool policy refused user=%s site=%s customer=%s dialed=%s: %s",
                 caller.full_number, caller.site.code, caller.customer.id,
                 decision.e164 or decision.number or "", reason)
        return Refuse(403, "Minute Pool Policy", warning=f'399 wte "{reason}"')


def policies_of(settings: RatingSettings) -> dict[tuple[str, str], SitePolicy]:
    out: dict[tuple[str, str], SitePolicy] = {}
    for entry in {*settings.refuse_past_pool, *settings.refuse_not_included}:
        customer, _, site = entry.partition("/")
        out[(customer, site)] = SitePolicy(past_pool=entry in settings.refuse_past_pool,
                                           not_included=entry in settings.refuse_not_included)
    return out


def call_admission(settings: RatingSettings, limits: CallLimits,
                   pool: PoolService | None) -> CallAdmission:
    """The call admission wired by switch.app: with the pool policies when any is set."""
    policies = policies_of(settings)
    if pool is None or not policies:
        return CallAdmission(limits)
    return PoolAdmission(limits, pool, policies)


def rating_file(settings: RatingSettings, config_path: Path) -> Path | None:
    """The rating file: `rating.file`, else rating.yaml beside the configuration."""
    if settings.file:
        return Path(settings.file).expanduser()
    beside = config_path.parent / "rating.yaml"
    return beside if beside.is_file() else None


def pool_service(settings: RatingSettings, config_path: Path, records: CallRecords,
                 plans: PlanView, store: PoolStore) -> PoolService | None:
    """The service wired by switch.app, or None when live rating is off (disabled, or no
    rating file beside the configuration). A rating file that does not load raises
    ConfigError (file, line, field), like the rest of the configuration."""
    path = rating_file(settings, config_path) if settings.enabled else None
    if path is None:
        log.info("minute pool: live counting off (%s)",
                 "rating.enabled is false" if not settings.enabled
                 else f"no rating.yaml beside {config_path}")
        return None
    config = load_rating(path)
    log.info("minute pool: live counting on, rating file %s, webhook %s", path,
             "set" if settings.webhook_url else "not set")
    return PoolService(records, store, plans, config, webhook_url=settings.webhook_url,
                       catch_up_seconds=settings.catch_up_seconds)
