"""The admin API fuzzed from its own OpenAPI document (issue 18): schemathesis generates
requests for every operation (valid and invalid ones), sends them to a running switch
with an operator token, and checks that no answer is a 5xx and that every answer matches
the document (status documented, body within its schema).

Bounded by count, not by a timer: `MAX_EXAMPLES` per operation (about 900 requests,
10 to 30 s here depending on the machine's load).
Left out: `POST /session` (every wrong password counts in the failure guard, which would
slow the whole run) and `POST /plan/rollback` (it would restore an older plan: the
rollback is tested in test_admin_api.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.server import RunningSwitch, start_switch

OPERATOR = "operator-fuzz-token-0123456789"
MAX_EXAMPLES = 25
SKIPPED = {("POST", "/session"), ("POST", "/plan/rollback")}


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("fuzz") / "var",
                           env={"WTE_ADMIN_TOKEN": OPERATOR})
    yield running
    running.stop()


def test_no_5xx_and_every_answer_matches_the_document(switch: RunningSwitch) -> None:
    base = f"http://{switch.host}:{switch.http_port}"
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]
    assert len(operations) > 25
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    failures: list[str] = []
    sent = 0
    started = time.monotonic()
    def fuzz(operation: Any) -> None:
        # valid requests and invalid ones (wrong types, missing fields, out of range)
        strategy = st.one_of(operation.as_strategy(),
                             operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def run(data: Any) -> None:
            nonlocal sent
            case = data.draw(strategy)
            response = case.call(base_url=f"{base}/api/v1", headers=headers, timeout=10)
            sent += 1
            try:
                case.validate_response(response, checks=[not_a_server_error,
                                                         response_schema_conformance])
            except Exception as exc:  # collected: every operation's failure is reported
                failures.append(f"{operation.method.upper()} {operation.path} -> "
                                f"{response.status_code}: {str(exc)[:500]}")
                raise

        try:
            run()
        except Exception:
            pass

    for operation in operations:
        fuzz(operation)
    elapsed = time.monotonic() - started
    assert sent >= len(operations), sent
    print(f"fuzzed {len(operations)} operations with {sent} requests in {elapsed:.1f} s")
    assert not failures, "\n".join(failures)
    assert switch.proc.poll() is None  # still running
