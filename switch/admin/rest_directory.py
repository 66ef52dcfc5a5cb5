"""The customers' directory over the API (issue 18, service description 4.1 "User Hub"):
customers, sites, users and their devices, hunt groups, queues with live agents,
auto-attendants, schedules with the night switch. Read from the running plan and services;
the changes (a user's settings, an agent's login, a schedule's mode) go through the same
services as the feature codes, so calls see them at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict

from dialplan import Customer, User
from dialplan.model import Queue
from dialplan.schedule import ScheduleMode, schedule_open

from .auth import Principal, Role
from .rest import ApiContext, admin, context, not_found
from .rest_self import SettingsBody, SettingsOut, settings_out, update_settings

router = APIRouter(tags=["directory"])

CustomerId = Annotated[str, Path(max_length=64)]
Ref = Annotated[str, Path(max_length=64)]


class CustomerOut(BaseModel):
    id: str
    name: str
    sip_domain: str
    prefix: str
    sites: list[str]
    users: int


class SiteOut(BaseModel):
    code: str
    name: str
    main_number: str | None
    timezone: str
    users: int
    hunt_groups: int
    queues: int
    auto_attendants: int


class BundleOut(BaseModel):
    site: str
    month: str
    active_users: int
    size_seconds: int
    used_seconds: int
    used_percent: float


class UserOut(BaseModel):
    number: str
    extension: str
    name: str
    public_number: str | None
    site: str
    pack: str
    admin: bool
    email: str | None
    registered: int


class RegistrationOut(BaseModel):
    user: str
    contact: str
    transport: str
    source: str
    user_agent: str
    expires_at: float
    registered_at: float


class GroupOut(BaseModel):
    id: str
    name: str
    number: str
    public_number: str | None
    site: str
    strategy: str
    members: list[str]
    schedule: str | None


class AgentOut(BaseModel):
    number: str
    status: str
    answered: int


class QueueOut(BaseModel):
    id: str
    name: str
    number: str
    public_number: str | None
    site: str
    strategy: str
    max_waiting: int
    waiting: int
    longest_wait: float
    agents: list[AgentOut]
    callers: list[dict[str, object]]


class AgentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    logged_in: bool


class AttendantOut(BaseModel):
    id: str
    name: str
    number: str
    public_number: str | None
    site: str
    keys: dict[str, str]
    schedule: str | None


class ScheduleOut(BaseModel):
    id: str
    mode: str
    open_now: bool
    why: str
    hours: dict[str, list[str]]


class ModeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["open", "closed", "auto"]


def _users(customer: Customer) -> list[User]:
    return [u for site in customer.sites for u in site.users]


def _customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(id=c.id, name=c.name, sip_domain=c.sip_domain, prefix=c.prefix,
                       sites=[s.code for s in c.sites], users=len(_users(c)))


@router.get("/customers", response_model=list[CustomerOut],
            summary="the customers the caller may see")
async def customers(who: Principal = Depends(admin),
                    ctx: ApiContext = Depends(context)) -> list[CustomerOut]:
    return [_customer_out(c) for c in ctx.switch.plan_holder.plan.customers
            if who.sees(c.id)]


@router.get("/customers/{customer_id}", response_model=CustomerOut)
async def customer(customer_id: CustomerId, who: Principal = Depends(admin),
                   ctx: ApiContext = Depends(context)) -> CustomerOut:
    return _customer_out(ctx.customer(who, customer_id))


@router.get("/customers/{customer_id}/sites", response_model=list[SiteOut])
async def sites(customer_id: CustomerId, who: Principal = Depends(admin),
                ctx: ApiContext = Depends(context)) -> list[SiteOut]:
    return [SiteOut(code=s.code, name=s.name, main_number=s.main_number,
                    timezone=str(s.timezone), users=len(s.users),
                    hunt_groups=len(s.hunt_groups), queues=len(s.queues),
                    auto_attendants=len(s.auto_attendants))
            for s in ctx.customer(who, customer_id).sites]


@router.get("/customers/{customer_id}/sites/{site_code}/bundle", response_model=BundleOut,
            summary="the site's pooled minute bundle this month (404 when rating is off)")
async def bundle(customer_id: CustomerId, site_code: Ref, who: Principal = Depends(admin),
                 ctx: ApiContext = Depends(context)) -> BundleOut:
    from rating.bundle import PoolKey, month_of
    from rating.export import sites_from_plan

    c = ctx.customer(who, customer_id)
    site = c.sites_by_code.get(site_code)
    pool = ctx.switch.pool
    if site is None or pool is None:
        raise not_found()
    month = month_of(ctx.clock(), site.timezone)
    info = sites_from_plan(ctx.switch.plan_holder.plan)[(c.id, site.code)]
    size = info.pool_seconds(pool.config)
    states = await pool.store.states(month)
    state = states.get(PoolKey(c.id, site.code, month))
    used = state.used if state is not None else 0
    return BundleOut(site=site.code, month=month, active_users=info.active_users(pool.config),
                     size_seconds=size, used_seconds=used,
                     used_percent=round(100.0 * used / size, 1) if size else 0.0)


def _registered(ctx: ApiContext, user: User) -> int:
    from switch.call_targets import aor_key

    return len(ctx.switch.registration.location.lookup(aor_key(user), ctx.clock()))


def _user_out(ctx: ApiContext, u: User) -> UserOut:
    return UserOut(number=u.full_number, extension=u.extension, name=u.name,
                   public_number=u.public_number, site=u.site.code, pack=u.pack.value,
                   admin=u.admin, email=u.email, registered=_registered(ctx, u))


@router.get("/customers/{customer_id}/users", response_model=list[UserOut])
async def users(customer_id: CustomerId, who: Principal = Depends(admin),
                ctx: ApiContext = Depends(context)) -> list[UserOut]:
    return [_user_out(ctx, u) for u in _users(ctx.customer(who, customer_id))]


@router.get("/customers/{customer_id}/users/{number}", response_model=UserOut)
async def user(customer_id: CustomerId, number: Ref, who: Principal = Depends(admin),
               ctx: ApiContext = Depends(context)) -> UserOut:
    return _user_out(ctx, ctx.user(who, customer_id, number))


@router.get("/customers/{customer_id}/users/{number}/settings", response_model=SettingsOut)
async def user_settings(customer_id: CustomerId, number: Ref,
                        who: Principal = Depends(admin),
                        ctx: ApiContext = Depends(context)) -> SettingsOut:
    u = ctx.user(who, customer_id, number)
    if ctx.switch.user_settings is None:
        raise not_found()
    return settings_out(ctx.switch.user_settings.settings_for(u))


@router.put("/customers/{customer_id}/users/{number}/settings", response_model=SettingsOut)
async def put_user_settings(customer_id: CustomerId, number: Ref, body: SettingsBody,
                            request: Request, who: Principal = Depends(admin),
                            ctx: ApiContext = Depends(context)) -> SettingsOut:
    return await update_settings(ctx, request, who, ctx.user(who, customer_id, number), body)


@router.get("/customers/{customer_id}/registrations", response_model=list[RegistrationOut],
            summary="the registered devices of the customer's users")
async def registrations(customer_id: CustomerId, who: Principal = Depends(admin),
                        ctx: ApiContext = Depends(context)) -> list[RegistrationOut]:
    c = ctx.customer(who, customer_id)
    now = ctx.clock()
    prefix = f"{c.id}:"
    return [RegistrationOut(user=b.aor[len(prefix):], contact=b.contact,
                            transport=b.transport,
                            source=f"{b.source_host}:{b.source_port}",
                            user_agent=b.user_agent, expires_at=b.expires_at,
                            registered_at=b.registered_at)
            for b in ctx.switch.registration.location.all_bindings()
            if b.aor.startswith(prefix) and b.expires_at > now]


@router.get("/customers/{customer_id}/hunt-groups", response_model=list[GroupOut])
async def hunt_groups(customer_id: CustomerId, who: Principal = Depends(admin),
                      ctx: ApiContext = Depends(context)) -> list[GroupOut]:
    return [GroupOut(id=g.id, name=g.name, number=g.full_number, public_number=g.public_number,
                     site=s.code, strategy=g.strategy.value,
                     members=[m.full_number for m in g.members],
                     schedule=g.schedule.id if g.schedule else None)
            for s in ctx.customer(who, customer_id).sites for g in s.hunt_groups]


def _queue_out(ctx: ApiContext, q: Queue) -> QueueOut:
    service = ctx.switch.queues
    entry = service.entries.get((q.customer.id, q.id)) if service is not None else None
    now = service.now() if service is not None else ctx.clock()
    agents: list[AgentOut] = []
    callers: list[dict[str, object]] = []
    waiting, longest = 0, 0.0
    if entry is not None:
        state = entry.state
        agents = [AgentOut(number=a.number, status=a.status.name.lower(), answered=a.answered)
                  for a in state.agents.values()]
        callers = [{"position": i + 1, "caller": w.caller,
                    "waited": round(now - w.entered, 1)}
                   for i, w in enumerate(state.waiting.values())]
        waiting, longest = len(state.waiting), round(state.longest_wait(now), 1)
    else:
        agents = [AgentOut(number=a.full_number, status="free", answered=0) for a in q.agents]
    return QueueOut(id=q.id, name=q.name, number=q.full_number, public_number=q.public_number,
                    site=q.site.code, strategy=q.strategy.value, max_waiting=q.max_waiting,
                    waiting=waiting, longest_wait=longest, agents=agents, callers=callers)


def _queue(ctx: ApiContext, who: Principal, customer_id: str, ref: str) -> Queue:
    for s in ctx.customer(who, customer_id).sites:
        for q in s.queues:
            if ref in (q.id, q.full_number):
                return q
    raise not_found()


@router.get("/customers/{customer_id}/queues", response_model=list[QueueOut],
            summary="call queues with their waiting callers and agents, live")
async def queues(customer_id: CustomerId, who: Principal = Depends(admin),
                 ctx: ApiContext = Depends(context)) -> list[QueueOut]:
    return [_queue_out(ctx, q) for s in ctx.customer(who, customer_id).sites
            for q in s.queues]


@router.get("/customers/{customer_id}/queues/{queue_id}", response_model=QueueOut)
async def queue(customer_id: CustomerId, queue_id: Ref, who: Principal = Depends(admin),
                ctx: ApiContext = Depends(context)) -> QueueOut:
    return _queue_out(ctx, _queue(ctx, who, customer_id, queue_id))


@router.put("/customers/{customer_id}/queues/{queue_id}/agents/{number}",
            response_model=QueueOut, summary="log an agent in to or out of a queue")
async def queue_agent(customer_id: CustomerId, queue_id: Ref, number: Ref, body: AgentBody,
                      request: Request, who: Principal = Depends(admin),
                      ctx: ApiContext = Depends(context)) -> QueueOut:
    q = _queue(ctx, who, customer_id, queue_id)
    agent = ctx.user(who, customer_id, number)
    service = ctx.switch.queues
    if service is None or service.agent_login(q.customer.id, q.full_number,
                                              agent.full_number, body.logged_in) is None:
        raise not_found()
    await ctx.audit(who, request, "queue.agent", f"{q.customer.id}/{q.id}/{agent.full_number}",
                    {"logged_in": body.logged_in}, customer=q.customer.id)
    return _queue_out(ctx, q)


@router.get("/customers/{customer_id}/auto-attendants", response_model=list[AttendantOut])
async def auto_attendants(customer_id: CustomerId, who: Principal = Depends(admin),
                          ctx: ApiContext = Depends(context)) -> list[AttendantOut]:
    return [AttendantOut(id=a.id, name=a.name, number=a.full_number,
                         public_number=a.public_number, site=s.code,
                         keys={k: str(v) for k, v in a.menu},
                         schedule=a.schedule.id if a.schedule else None)
            for s in ctx.customer(who, customer_id).sites for a in s.auto_attendants]


def _schedule_out(ctx: ApiContext, c: Customer, sid: str) -> ScheduleOut:
    sched = c.schedules[sid]
    forced = ctx.switch.schedules.forced if ctx.switch.schedules is not None else {}
    mode = forced.get((c.id, sid), ScheduleMode.AUTO)
    tz = c.sites[0].timezone if c.sites else dt.UTC
    now = dt.datetime.fromtimestamp(ctx.clock(), tz)
    is_open, why = schedule_open(sched, now, tz, mode)  # type: ignore[arg-type]
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    hours = {days[d]: [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"
                       for a, b in spans] for d, spans in sorted(sched.hours.items())}
    return ScheduleOut(id=sid, mode=mode.value, open_now=is_open, why=why, hours=hours)


@router.get("/customers/{customer_id}/schedules", response_model=list[ScheduleOut],
            summary="business-hour schedules and their night switch mode")
async def schedules(customer_id: CustomerId, who: Principal = Depends(admin),
                    ctx: ApiContext = Depends(context)) -> list[ScheduleOut]:
    c = ctx.customer(who, customer_id)
    return [_schedule_out(ctx, c, sid) for sid in sorted(c.schedules)]


@router.put("/customers/{customer_id}/schedules/{schedule_id}/mode",
            response_model=ScheduleOut, summary="the night switch: force open, closed, or auto")
async def schedule_mode(customer_id: CustomerId, schedule_id: Ref, body: ModeBody,
                        request: Request, who: Principal = Depends(admin),
                        ctx: ApiContext = Depends(context)) -> ScheduleOut:
    c = ctx.customer(who, customer_id)
    if schedule_id not in c.schedules or ctx.switch.schedules is None:
        raise not_found()
    by = f"api:{who.name}" if who.role is not Role.USER else who.name
    ctx.switch.schedules.set(c.id, schedule_id, ScheduleMode(body.mode), by)
    await ctx.audit(who, request, "schedule.mode", f"{c.id}/{schedule_id}",
                    {"mode": body.mode}, customer=c.id)
    return _schedule_out(ctx, c, schedule_id)
