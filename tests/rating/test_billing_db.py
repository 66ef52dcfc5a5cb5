"""The thin database reader of the billing export (switch.storage.billing), on SQLite: the
records written by the call records repository come back, and the export of the month
matches the one built from the same records in memory."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from dialplan import load_plan
from rating.cdr import CallRecord
from rating.export import build_export, on_net_of, sites_from_plan, to_json
from rating.tariff import load_rating
from switch.storage.billing import add_export_arguments, read_month_records, run_export
from switch.storage.cdrs import SqlCallRecordRepository
from switch.storage.engine import create_engine
from switch.storage.models import Base

from .conftest import RATING_YAML, ROOT, epoch, record

EXAMPLE = ROOT / "config" / "example.yaml"


def _records() -> list[CallRecord]:
    c = load_plan(EXAMPLE).customers[0]
    site = c.sites[0].code
    recs = [
        record("0612345678", site, epoch("2026-11-02 10:00:00"), 125, rid="n1"),
        record("0262412345", site, epoch("2026-11-30 23:59:00"), 120, rid="n2"),
        record("00376312345", site, epoch("2026-11-15 10:00:00"), 61, rid="n3"),
        record("0612345678", site, epoch("2026-12-01 00:01:00"), 60, rid="d1"),
        record("0612345678", site, epoch("2026-11-03 10:00:00"), 0, answered=False, rid="u1"),
    ]
    return [replace(r, customer=c.id) for r in recs]


async def _fill(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await SqlCallRecordRepository(engine).write_batch([("open", r) for r in _records()])
    finally:
        await engine.dispose()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    asyncio.run(_fill(f"sqlite+aiosqlite:///{tmp_path / 'wte.db'}"))
    return tmp_path


def _args(data_dir: Path, *extra: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_export_arguments(p)
    return p.parse_args(["--config", str(EXAMPLE), "--rating", str(RATING_YAML),
                         "--data-dir", str(data_dir), *extra])


def test_reader_returns_the_answered_calls_of_the_window(data_dir: Path) -> None:
    async def read() -> list[str]:
        engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'wte.db'}")
        try:
            return [r.id for r in await read_month_records(engine, "2026-11")]
        finally:
            await engine.dispose()

    assert asyncio.run(read()) == ["n1", "n3", "n2", "d1"]  # d1 is in the widened window


def test_export_from_the_database_matches_the_pure_export(data_dir: Path) -> None:
    out = io.StringIO()
    assert run_export(_args(data_dir, "--month", "2026-11", "--format", "json"), out) == 0
    plan = load_plan(EXAMPLE)
    expected = build_export(_records(), load_rating(RATING_YAML), sites_from_plan(plan),
                            "2026-11", on_net=on_net_of(plan))
    assert out.getvalue() == to_json(expected)
    doc = json.loads(out.getvalue())
    assert [c["record_id"] for c in doc["calls"]] == ["n1", "n3", "n2"]
    again = io.StringIO()
    assert run_export(_args(data_dir, "--month", "2026-11", "--format", "json"), again) == 0
    assert again.getvalue() == out.getvalue()


def test_export_csv_and_errors(data_dir: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_export(_args(data_dir, "--month", "2026-11"), out) == 0
    assert out.getvalue().startswith("# sites\n")
    bad = io.StringIO()
    assert run_export(_args(data_dir, "--month", "2026-13"), bad) == 2
    assert "YYYY-MM" in bad.getvalue()
    missing = io.StringIO()
    assert run_export(_args(tmp_path / "nowhere", "--month", "2026-11"), missing) == 1
