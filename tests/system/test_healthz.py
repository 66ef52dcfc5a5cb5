"""/healthz of a running switch (issue 20 item 8): 200 with its checks while the database
answers, 503 naming the database once it does not (here: the switch's PostgreSQL schema
is dropped under it)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import start_switch

PG = os.environ.get("TEST_DATABASE_URL") or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _pg(sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(PG).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_healthz_reports_the_database(tmp_path: Path) -> None:
    schema = f"wte_health_{secrets.token_hex(5)}"
    try:
        asyncio.run(_pg(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")
    url = f"{PG}{'&' if '?' in PG else '?'}schema={schema}"
    switch = start_switch(tmp_path, env={"DATABASE_URL": url})
    try:
        health = f"http://{switch.host}:{switch.http_port}/healthz"
        status, body = _get(health)
        assert status == 200, body
        assert body["status"] == "ok" and body["checks"]["database"]["ok"]
        assert body["checks"]["disk"]["ok"] and body["checks"]["disk"]["free_bytes"] > 0
        assert body["checks"]["transports"]["ok"]
        assert f"UDP {switch.host}:{switch.port}" in body["checks"]["transports"]["listening"]
        assert body["checks"]["plan"]["customers"] == 1
        assert body["checks"]["registrations"]["accepting"] is True
        asyncio.run(_pg(f'DROP SCHEMA "{schema}" CASCADE'))
        deadline = time.monotonic() + 15
        while True:  # the answer is cached a few seconds
            status, body = _get(health)
            if status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 503, body
        assert body["status"] == "fail" and body["failed"] == ["database"]
        assert body["checks"]["database"]["ok"] is False
    finally:
        switch.stop()
        asyncio.run(_pg(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
