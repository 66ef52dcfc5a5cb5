"""Shared fixtures for the dialplan tests: the example plan and its demo users."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialplan import Plan, load_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"


@pytest.fixture(scope="session")
def plan() -> Plan:
    return load_plan(EXAMPLE)
