"""Session-wide fixtures: the pjsua2 library (one per process, as PJSIP requires)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def pj_lib() -> Iterator[Any]:
    from tests.support.pjphone import PjLibrary

    lib = PjLibrary()
    yield lib
    lib.destroy()


@pytest.fixture(autouse=True)
def _pj_calls_settled(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the pjsua2 library, its calls are hung up and gone before the
    next test, while that test's switch still answers the BYEs. This wheel holds 4 calls per
    process: a call a failing test left behind would take a slot a later test needs (its
    phones would then refuse the switch's INVITEs), turning one failure into several. A call
    still ending toward a switch that is gone (its BYE retransmitted up to 64*T1) is waited
    for before the next test that uses the library."""
    uses_pjsua2 = "pj_lib" in request.fixturenames
    if uses_pjsua2:
        request.getfixturevalue("pj_lib").settle_calls(40.0)
    yield
    if uses_pjsua2:
        request.getfixturevalue("pj_lib").settle_calls(10.0)
