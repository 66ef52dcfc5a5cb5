"""The device inventory over the bindings table, and the `wte devices` command.

No table of its own: every registered binding already stores what the inventory shows (the
User-Agent, the +sip.instance, the transport, the source address, the last registration),
and `devices.inventory.identify` derives vendor, model, firmware and MAC from it. One line
per binding (a device registering several contacts shows once per contact); rows of
expired bindings not yet swept are shown with `active: false`.

`devices_main(args)` writes JSON lines (like `wte calls`) to the stream it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, TextIO, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import DBAPIError

from devices.inventory import identify

from .cli import missing_sqlite_file
from .engine import create_engine
from .models import RegistrationRow


@dataclass(frozen=True, slots=True)
class DeviceRow:
    account: str  # the AOR key, "customer:number"
    user: str  # the number the device serves
    vendor: str | None
    model: str | None
    firmware: str | None
    mac: str | None
    user_agent: str
    transport: str
    source: str  # host:port the REGISTER came from
    contact: str
    instance: str | None
    registered_at: float  # epoch seconds of the last REGISTER
    expires_in: int  # seconds left, 0 once expired
    active: bool


def _source(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def device_row(r: Any, now: float) -> DeviceRow:
    """One inventory row from one registrations row (pure)."""
    info = identify(r.user_agent or "", r.instance_id)
    aor = str(r.aor)
    return DeviceRow(
        account=aor, user=aor.rsplit(":", 1)[-1], vendor=info.vendor, model=info.model,
        firmware=info.firmware, mac=info.mac, user_agent=r.user_agent or "",
        transport=r.transport, source=_source(r.source_host, int(r.source_port)),
        contact=r.contact, instance=r.instance_id, registered_at=float(r.registered_at),
        expires_in=max(0, round(float(r.expires_at) - now)), active=float(r.expires_at) > now,
    )


class InventoryError(RuntimeError):
    """The database cannot be read; the message says what to do."""


async def read_devices(url: str, now: float) -> list[DeviceRow]:
    """Every binding in the table as an inventory row, by account, newest first."""
    if (missing := missing_sqlite_file(url)) is not None:
        raise InventoryError(f"no database at {missing}: run `wte db upgrade` first")
    engine = create_engine(url)
    table = cast(Table, RegistrationRow.__table__)
    try:
        async with engine.connect() as conn:
            try:
                rows = (await conn.execute(
                    select(table).order_by(table.c.aor, table.c.registered_at.desc()))).all()
            except DBAPIError as exc:
                raise InventoryError(
                    f"cannot read registrations ({exc.orig}): run `wte db upgrade` first"
                ) from exc
    finally:
        await engine.dispose()
    return [device_row(r, now) for r in rows]


async def list_devices(url: str, out: TextIO, now: float) -> int:
    """JSON lines, one per device binding; 0, or 1 with the reason on error."""
    try:
        rows = await read_devices(url, now)
    except InventoryError as exc:
        out.write(json.dumps({"error": str(exc)}) + "\n")
        return 1
    for row in rows:
        out.write(json.dumps(asdict(row), sort_keys=True) + "\n")
    return 0


def devices_main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`wte devices [--data-dir DIR]`: list every device the switch has seen registering:
    user, model, firmware, MAC, transport, source, last registration."""
    from .cli import database_url

    stream = sys.stdout if out is None else out
    return asyncio.run(list_devices(database_url(str(args.data_dir)), stream, time.time()))
