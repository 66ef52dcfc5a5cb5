"""Call records and calls in progress over the API (issue 18, service description 3.5.1
and 4.3): filters by user, site, period and disposition, a CSV export, a user's missed
calls; the calls in progress, and hanging one up.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from rating.cdr import CallRecord
from switch.storage.admin_api import query_call_records

from .auth import Principal, Role
from .rest import ApiContext, admin, context, not_found
from .rest_directory import CustomerId

router = APIRouter(tags=["calls"])

MISSED = ("no_answer", "cancelled", "busy", "unreachable", "failed", "rejected", "refused")


class RecordOut(BaseModel):
    id: str
    call_id: str
    caller: str
    callee: str | None
    dialed: str
    decision: str
    site: str | None
    customer: str | None
    start: float
    answer: float | None
    end: float | None
    disposition: str | None
    status: int | None
    cause: str | None
    hangup_side: str | None
    codec: str | None
    emergency: bool
    billable: bool
    transferred_to: str | None
    queue_outcome: str | None
    queue_wait: float | None
    rtcp_loss: float | None
    rtcp_jitter_ms: float | None


class ActiveCallOut(BaseModel):
    id: str
    call_id: str
    caller: str
    callee: str | None
    dialed: str
    customer: str | None
    state: str
    start: float
    answer: float | None


_FIELDS = list(RecordOut.model_fields)


def _out(r: CallRecord) -> RecordOut:
    values: dict[str, Any] = dataclasses.asdict(r)
    return RecordOut.model_validate({k: values.get(k) for k in _FIELDS})


def _csv(records: list[CallRecord]) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(_FIELDS)
    for r in records:
        values = _out(r).model_dump()
        writer.writerow(["" if values[k] is None else values[k] for k in _FIELDS])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="calls.csv"'})


Text = Annotated[str | None, Query(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=5000)]
Format = Annotated[str, Query(pattern="^(json|csv)$")]


async def _records(ctx: ApiContext, customer: str | None, user: str | None, site: str | None,
                   since: float | None, until: float | None, disposition: str | None,
                   missed: bool, limit: int, call_id: str | None = None) -> list[CallRecord]:
    records = await query_call_records(
        ctx.switch.engine, customer=customer, user=user, site=site, since=since,
        until=until, disposition=disposition, limit=limit, call_id=call_id)
    if missed:  # a user's missed calls: received and not answered
        records = [r for r in records if user is not None and r.callee == user
                   and r.answer is None and (r.disposition or "") in MISSED]
    return list(records)


_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/csv": {}}}}


@router.get("/customers/{customer_id}/calls", response_model=list[RecordOut],
            responses=_CSV,
            summary="call records (newest first), as JSON or CSV")
async def customer_calls(customer_id: CustomerId, user: Text = None, site: Text = None,
                         since: float | None = None, until: float | None = None,
                         disposition: Text = None, missed: bool = False, limit: Limit = 100,
                         format: Format = "json", who: Principal = Depends(admin),
                         ctx: ApiContext = Depends(context)) -> Any:
    c = ctx.customer(who, customer_id)
    records = await _records(ctx, c.id, user, site, since, until, disposition, missed, limit)
    return _csv(records) if format == "csv" else [_out(r) for r in records]


@router.get("/calls", response_model=list[RecordOut], responses=_CSV,
            summary="call records of every customer (operators) or of the admin's own")
async def all_calls(customer: Text = None, user: Text = None, site: Text = None,
                    since: float | None = None, until: float | None = None,
                    disposition: Text = None, missed: bool = False, limit: Limit = 100,
                    format: Format = "json",
                    call_id: Annotated[str | None, Query(max_length=255)] = None,
                    who: Principal = Depends(admin),
                    ctx: ApiContext = Depends(context)) -> Any:
    if who.role is not Role.OPERATOR:
        if customer is not None and customer != who.customer:
            raise not_found()  # another customer's, or none: the same answer
        customer = who.customer
    records = await _records(ctx, customer, user, site, since, until, disposition, missed,
                             limit, call_id)
    return _csv(records) if format == "csv" else [_out(r) for r in records]


def _active(ctx: ApiContext) -> list[tuple[Any, CallRecord]]:
    from switch.b2bua.call import CallState
    from switch.b2bua.effects import Side

    calls = ctx.switch.calls
    return [(ref.entry, ref.entry.record) for ref in list(calls.by_call_id.values())
            if ref.side is Side.CALLER and ref.entry.call.state is not CallState.ENDED]


@router.get("/customers/{customer_id}/active-calls", response_model=list[ActiveCallOut],
            summary="the customer's calls in progress")
async def active_calls(customer_id: CustomerId, who: Principal = Depends(admin),
                       ctx: ApiContext = Depends(context)) -> list[ActiveCallOut]:
    c = ctx.customer(who, customer_id)
    return [ActiveCallOut(id=r.id, call_id=r.call_id, caller=r.caller, callee=r.callee,
                          dialed=r.dialed, customer=r.customer,
                          state=entry.call.state.name.lower(), start=r.start, answer=r.answer)
            for entry, r in _active(ctx) if r.customer == c.id]


@router.delete("/customers/{customer_id}/active-calls/{record_id}", status_code=204,
               summary="hang a call up (both sides get a BYE or CANCEL)")
async def hang_up(customer_id: CustomerId, record_id: Annotated[str, Path(max_length=64)],
                  request: Request, who: Principal = Depends(admin),
                  ctx: ApiContext = Depends(context)) -> Response:
    c = ctx.customer(who, customer_id)
    for entry, r in _active(ctx):
        if r.customer == c.id and r.id == record_id:
            calls = ctx.switch.calls
            calls.perform(entry, entry.call.hang_up(calls.now(), "hung up by an admin"))
            await ctx.audit(who, request, "call.hang_up", r.id,
                            {"caller": r.caller, "callee": r.callee}, customer=c.id)
            return Response(status_code=204)
    raise not_found()
