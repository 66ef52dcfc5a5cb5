"""The admin API's logins and tokens go through the failure guard of SIP digest (issue 18):
wrong passwords for POST /api/v1/session and wrong bearer tokens are slowed, then refused
with 429 and Retry-After, without the password being looked at (the right one too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api import ApiClient
from tests.support.server import RunningSwitch, config_with, start_switch


@pytest.fixture
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    tmp = tmp_path_factory.mktemp("api-guard")
    config = config_with(tmp, {"auth.max_failures": 3, "auth.slow_after": 3,
                               "auth.failure_window": 600, "auth.block_seconds": 600})
    running = start_switch(tmp / "var", config=config)
    yield running
    running.stop()


def test_wrong_passwords_are_throttled_then_refused(switch: RunningSwitch) -> None:
    api = ApiClient(f"http://{switch.host}:{switch.http_port}")
    statuses = []
    for _ in range(5):
        statuses.append(api.post("/api/v1/session", {"username": "501410",
                                                     "password": "guess"}).status)
    assert statuses[:2] == [401, 401] and statuses[-1] == 429, statuses
    right = api.post("/api/v1/session", {"username": "501410", "password": "demo-501410"})
    assert right.status == 429  # blocked: not even the right password is looked at
    assert int(right.headers["Retry-After"]) > 0


def test_wrong_tokens_are_refused_once_the_source_is_blocked(switch: RunningSwitch) -> None:
    api = ApiClient(f"http://{switch.host}:{switch.http_port}")
    statuses = [api.with_token(f"wte_wrong{i}").get("/api/v1/customers").status
                for i in range(5)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert api.get("/api/v1/customers").status == 401  # no token: nothing to count
