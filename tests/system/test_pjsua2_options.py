"""An independent SIP stack (PJSIP, through pjsua2) talks to `wte serve`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.pjphone import make_phone
from tests.support.server import RunningSwitch, start_switch


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("pjopt"))
    yield running
    running.stop()


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS"])
def test_pjsua2_options_gets_200(pj_lib: Any, switch: RunningSwitch, transport: str) -> None:
    port = switch.tls_port if transport == "TLS" else switch.port
    phone = make_phone(pj_lib, transport=transport, user="tester", host=switch.host, port=port)
    try:
        target = f"sip:{switch.host}:{port}"
        if transport != "UDP":
            target += f";transport={transport.lower()}"
        result = phone.send_request("OPTIONS", target)
    finally:
        phone.shutdown()
    assert result.status == 200, (result, switch.log_text()[-2000:])
    assert "Allow:" in result.raw and "OPTIONS" in result.raw
