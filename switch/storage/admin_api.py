"""The admin API's tables (issue 18, migration 0012): `api_tokens` and `audit_log`.

A token is never stored: only its sha256 (a token is 32 random bytes, so a plain hash is
enough; no salt or slow hash needed, unlike a password). A revoked token keeps its row
(`revoked_at`): the audit log still names it. The audit log is append-only here.

Declared on the shared metadata (models.Base) so alembic's autogenerate comparison sees
the tables once this module is imported.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Double, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

TOKEN_PREFIX = "wte_"


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    customer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Double)
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Double, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    customer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """(id, token): the id names the token in listings and the audit log; the token is
    shown once and only its hash is stored."""
    return secrets.token_hex(6), TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    role: str
    customer: str | None
    name: str
    created_at: float
    created_by: str
    revoked_at: float | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "customer": self.customer,
                "name": self.name, "created_at": self.created_at,
                "created_by": self.created_by, "revoked_at": self.revoked_at}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    role: str
    customer: str | None
    action: str
    target: str
    detail: dict[str, Any]
    source: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "role": self.role,
                "customer": self.customer, "action": self.action, "target": self.target,
                "detail": self.detail, "source": self.source}


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.role, row.customer, row.name, row.created_at,
                     row.created_by, row.revoked_at)


class SqlAdminApi:
    """Tokens and the audit log, on SQLite and PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create_token(self, role: str, customer: str | None, name: str, by: str,
                           now: float) -> tuple[TokenInfo, str]:
        token_id, token = new_token()
        row = ApiTokenRow(id=token_id, token_hash=token_hash(token), role=role,
                          customer=customer, name=name, created_at=now, created_by=by,
                          revoked_at=None)
        async with self._sessions() as s, s.begin():
            s.add(row)
        return _info(row), token

    async def find_token(self, token: str) -> TokenInfo | None:
        """The live (not revoked) token whose hash matches, by an indexed lookup of the
        hash: the comparison is between hashes, so its timing tells nothing of the token."""
        async with self._sessions() as s:
            row = (await s.execute(select(ApiTokenRow).where(
                ApiTokenRow.token_hash == token_hash(token)))).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        return _info(row)

    async def tokens(self, customer: str | None = None) -> list[TokenInfo]:
        stmt = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
        if customer is not None:
            stmt = stmt.where(ApiTokenRow.customer == customer)
        async with self._sessions() as s:
            return [_info(r) for r in (await s.execute(stmt)).scalars()]

    async def revoke(self, token_id: str, now: float, customer: str | None = None) -> bool:
        """Revoke a live token (of `customer` when given); False when there is none."""
        cond = [ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None)]
        if customer is not None:
            cond.append(ApiTokenRow.customer == customer)
        async with self._sessions() as s, s.begin():
            result = await s.execute(update(ApiTokenRow).where(*cond).values(revoked_at=now))
            return bool(getattr(result, "rowcount", 0))

    async def audit(self, *, at: float, actor: str, role: str, customer: str | None,
                    action: str, target: str, detail: dict[str, Any], source: str) -> None:
        async with self._sessions() as s, s.begin():
            s.add(AuditRow(at=at, actor=actor, role=role, customer=customer, action=action,
                           target=target, detail=json.dumps(detail, sort_keys=True),
                           source=source))

    async def audit_entries(self, *, customer: str | None = None, since: float | None = None,
                            limit: int = 100) -> list[AuditEntry]:
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if customer is not None:
            stmt = stmt.where(AuditRow.customer == customer)
        if since is not None:
            stmt = stmt.where(AuditRow.at >= since)
        async with self._sessions() as s:
            rows = (await s.execute(stmt)).scalars()
            return [AuditEntry(r.id, r.at, r.actor, r.role, r.customer, r.action, r.target,
                               json.loads(r.detail), r.source) for r in rows]


async def query_call_records(engine: AsyncEngine, *, customer: str | None = None,
                             user: str | None = None, site: str | None = None,
                             since: float | None = None, until: float | None = None,
                             disposition: str | None = None, call_id: str | None = None,
                             limit: int = 100) -> list[Any]:
    """Call records (rating.cdr.CallRecord), newest first, filtered: a user's calls are
    those it placed or received (its full internal number, caller or callee)."""
    from sqlalchemy import or_

    from .cdrs import _record
    from .models import CallRecordRow as R

    stmt = select(R).order_by(R.start.desc()).limit(limit)
    if customer is not None:
        stmt = stmt.where(R.customer == customer)
    if user is not None:
        stmt = stmt.where(or_(R.caller == user, R.callee == user))
    if site is not None:
        stmt = stmt.where(R.site == site)
    if since is not None:
        stmt = stmt.where(R.start >= since)
    if until is not None:
        stmt = stmt.where(R.start < until)
    if disposition is not None:
        stmt = stmt.where(R.disposition == disposition)
    if call_id is not None:
        stmt = stmt.where(R.call_id == call_id)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as s:
        return [_record(r) for r in (await s.execute(stmt)).scalars()]
