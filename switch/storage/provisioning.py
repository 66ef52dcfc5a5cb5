"""Provisioning storage: activation codes (their hash only) and the per-device credentials
the switch generated (HA1 digests only), and the `wte provisioning create-code` command.

The tables are declared here on the shared metadata (models.Base) so that alembic's
autogenerate comparison sees them once this module is imported (migration 0006).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO, cast

from sqlalchemy import Double, Index, Integer, String, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from devices.provisioning import (
    CODE_TTL,
    ActivationCode,
    DeviceCredential,
    display_code,
    new_code_record,
)

from .engine import create_engine
from .models import Base


class ActivationCodeRow(Base):
    __tablename__ = "activation_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    aor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    claimed_mac: Mapped[str | None] = mapped_column(String(17), nullable=True)
    claimed_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class DeviceCredentialRow(Base):
    __tablename__ = "device_credentials"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    realm: Mapped[str] = mapped_column(String(255), primary_key=True)
    ha1_md5: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    aor: Mapped[str] = mapped_column(String(255))
    mac: Mapped[str] = mapped_column(String(17))
    line: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_device_credentials_mac", "mac"),)


_CODES = cast(Table, ActivationCodeRow.__table__)
_CREDS = cast(Table, DeviceCredentialRow.__table__)


def _code(r: Any) -> ActivationCode:
    return ActivationCode(r.code_hash, r.customer, r.number, r.aor, float(r.created_at),
                          float(r.expires_at), r.claimed_mac,
                          None if r.claimed_at is None else float(r.claimed_at))


def _cred(r: Any) -> DeviceCredential:
    return DeviceCredential(r.username, r.realm, r.ha1_md5, r.ha1_sha256, r.aor, r.mac,
                            int(r.line), float(r.created_at))


class SqlProvisioningRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add_code(self, code: ActivationCode) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(_CODES).values(
                code_hash=code.code_hash, customer=code.customer, number=code.number,
                aor=code.aor, created_at=code.created_at, expires_at=code.expires_at))

    async def get_code(self, code_hash: str) -> ActivationCode | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(_CODES).where(_CODES.c.code_hash == code_hash))).first()
        return _code(row) if row is not None else None

    async def claim(self, code_hashes: Iterable[str], mac: str, now: float,
                    credentials: Iterable[DeviceCredential],
                    replaced: Iterable[DeviceCredential] = ()) -> bool:
        """Claim every code for `mac`, store the device's new credentials and delete the
        ones they replace, all or nothing: False (and nothing changed) when any code was
        claimed or expired meanwhile (two phones racing for one code: the database
        decides, one wins)."""
        async with self.engine.begin() as conn:
            for old in replaced:
                await conn.execute(delete(_CREDS).where(_CREDS.c.username == old.username,
                                                        _CREDS.c.realm == old.realm))
            for h in code_hashes:
                done = await conn.execute(
                    update(_CODES).where(_CODES.c.code_hash == h,
                                         _CODES.c.claimed_mac.is_(None),
                                         _CODES.c.expires_at > now)
                    .values(claimed_mac=mac, claimed_at=now))
                if done.rowcount != 1:
                    await conn.rollback()
                    return False
            rows = [dict(username=c.username, realm=c.realm, ha1_md5=c.ha1_md5,
                         ha1_sha256=c.ha1_sha256, aor=c.aor, mac=c.mac, line=c.line,
                         created_at=c.created_at) for c in credentials]
            if rows:
                await conn.execute(insert(_CREDS), rows)
        return True

    async def credentials(self) -> list[DeviceCredential]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_CREDS).order_by(_CREDS.c.mac,
                                                               _CREDS.c.line))).all()
        return [_cred(r) for r in rows]

    async def credentials_for_mac(self, mac: str) -> list[DeviceCredential]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_CREDS).where(_CREDS.c.mac == mac)
                                       .order_by(_CREDS.c.line))).all()
        return [_cred(r) for r in rows]


class CodeTargetError(ValueError):
    """The number names no user or workspace line of the plan."""


def code_target(config: str, number: str) -> tuple[str, str, str]:
    """(customer id, full number, aor) of the line `number` names in the configuration's
    plan (a full number "501412", or a public number "+33562070412")."""
    from dialplan.loader import load_plan_data
    from dialplan.yamlsource import load_yaml_file
    from switch.call_targets import aor_key

    plan = load_plan_data(load_yaml_file(config))
    user = plan.user_by_full_number(number)
    if user is None:
        user = next((u for u in plan.users if u.public_number == number), None)
    if user is None:
        raise CodeTargetError(f"no user or workspace {number!r} in {config}")
    return user.customer.id, user.full_number, aor_key(user)


async def create_code(url: str, customer: str, number: str, aor: str, now: float,
                      ttl: float = CODE_TTL) -> tuple[str, ActivationCode]:
    code, record = new_code_record(customer, number, aor, now, ttl)
    engine = create_engine(url)
    try:
        await SqlProvisioningRepository(engine).add_code(record)
    finally:
        await engine.dispose()
    return code, record


def create_code_main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`wte provisioning create-code --user 501412 [--days 7]`: print the new code (one
    JSON line: code, user, expiry). Only its hash is stored; it is shown this once."""
    from .cli import database_url, db_upgrade

    stream = sys.stdout if out is None else out
    try:
        customer, number, aor = code_target(str(args.config), str(args.user))
    except CodeTargetError as exc:
        stream.write(json.dumps({"error": str(exc)}) + "\n")
        return 1
    if not 0 < args.days <= 90:
        stream.write(json.dumps({"error": "--days must be between 1 and 90"}) + "\n")
        return 1
    url = database_url(str(args.data_dir))
    db_upgrade(url)  # idempotent: a fresh data directory gets its schema
    code, record = asyncio.run(create_code(url, customer, number, aor, time.time(),
                                           args.days * 86_400.0))
    stream.write(json.dumps({"code": code, "display": display_code(code), "user": number,
                             "customer": customer, "expires_at": record.expires_at}) + "\n")
    return 0


def add_provisioning_arguments(parser: argparse.ArgumentParser, default_config: str,
                               default_data: str) -> None:
    sub = parser.add_subparsers(dest="provisioning_command", required=True, metavar="ACTION")
    create = sub.add_parser("create-code", help="a 16-digit activation code for a line",
                            description="Single use, expiring; a phone claims it with its "
                            "MAC when it fetches its configuration over HTTP.")
    create.add_argument("--user", required=True, help="the user's or workspace's number "
                        "(full internal number such as 501412, or its public number)")
    create.add_argument("--days", type=int, default=7, help="validity in days (default 7)")
    create.add_argument("--config", default=default_config, help="configuration YAML")
    create.add_argument("--data-dir", default=default_data, help="where the database lives")
    create.set_defaults(func=create_code_main)
