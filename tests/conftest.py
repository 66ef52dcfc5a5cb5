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
