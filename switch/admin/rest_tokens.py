"""API tokens and the audit log over the API (issue 18).

Operators create tokens of any role; a customer admin creates, lists and revokes only its
own customer's customer-admin tokens. The audit log is the operators'.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from .auth import Principal, Role
from .rest import ApiContext, admin, context, not_found, operator

router = APIRouter(tags=["tokens and audit"])


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["operator", "customer-admin"]
    customer: str | None = Field(default=None, max_length=64,
                                 description="required for a customer-admin token")
    name: str = Field(default="", max_length=128, description="what the token is for")


class TokenOut(BaseModel):
    id: str
    role: str
    customer: str | None
    name: str
    created_at: float
    created_by: str
    revoked_at: float | None


class NewTokenOut(TokenOut):
    token: str = Field(description="shown once: only its hash is kept")


class AuditOut(BaseModel):
    id: int
    at: float
    actor: str
    role: str
    customer: str | None
    action: str
    target: str
    detail: dict[str, object]
    source: str


@router.post("/tokens", response_model=NewTokenOut, status_code=201,
             summary="create an API token (shown once)")
async def create_token(body: TokenBody, request: Request, who: Principal = Depends(admin),
                       ctx: ApiContext = Depends(context)) -> NewTokenOut:
    if body.role == "operator":
        if who.role is not Role.OPERATOR:
            raise not_found()
        customer = None
    else:
        if body.customer is None:
            if who.role is Role.OPERATOR:
                raise HTTPException(422, "customer: required for a customer-admin token")
            customer = who.customer
        else:
            customer = ctx.customer(who, body.customer).id
    info, token = await ctx.store.create_token(body.role, customer, body.name or body.role,
                                               who.name, ctx.clock())
    await ctx.audit(who, request, "token.create", info.id,
                    {"role": info.role, "name": info.name}, customer=customer)
    return NewTokenOut(token=token, **info.as_json())


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens (never the secret)")
async def list_tokens(who: Principal = Depends(admin),
                      ctx: ApiContext = Depends(context)) -> list[TokenOut]:
    infos = await ctx.store.tokens(None if who.role is Role.OPERATOR else who.customer)
    return [TokenOut(**i.as_json()) for i in infos]


@router.delete("/tokens/{token_id}", status_code=204, summary="revoke an API token")
async def revoke_token(token_id: Annotated[str, Field(max_length=32)], request: Request,
                       who: Principal = Depends(admin),
                       ctx: ApiContext = Depends(context)) -> Response:
    scope = None if who.role is Role.OPERATOR else who.customer
    if not await ctx.store.revoke(token_id, ctx.clock(), customer=scope):
        raise not_found()
    await ctx.audit(who, request, "token.revoke", token_id, customer=scope)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut], summary="the audit log (operators)")
async def audit_log(customer: Annotated[str | None, Query(max_length=64)] = None,
                    since: float | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    who: Principal = Depends(operator),
                    ctx: ApiContext = Depends(context)) -> list[AuditOut]:
    entries = await ctx.store.audit_entries(customer=customer, since=since, limit=limit)
    return [AuditOut(**e.as_json()) for e in entries]
