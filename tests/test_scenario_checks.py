"""Issue 24, scenarios: steps are checked against the engine when the file is loaded (file
and line, before any phone registers), and the own engine dials strings with `#`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios import ScenarioFileError, load_scenario
from scenarios.capabilities import engine_issues
from scenarios.cli import make_engine, play, scenario_main
from scenarios.engine import Pump
from scenarios.own import escape_user
from scenarios.switchproc import SwitchProcess, run_config, start_switch

TONE = (
    "phones:\n"
    "  alice: {account: '501410', password: demo-501410}\n"
    "  bruno: {account: '501411', password: demo-501411}\n"
    "steps:\n"
    "  - alice: register\n"
    "  - bruno: register\n"
    "  - alice: {dial: '411'}\n"
    "  - bruno: answer\n"
    "  - alice: {play_tone: {frequency: 1000, seconds: 1}}\n"   # line 9
    "  - bruno: {expect_tone: {frequency: 1000, seconds: 1}}\n"  # line 10
)


def _write(tmp_path: Path, text: str, name: str = "tone.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loading_a_media_step_for_the_own_engine_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, TONE)
    assert load_scenario(path).steps  # without an engine: a valid file
    with pytest.raises(ScenarioFileError) as info:
        load_scenario(path, "own")
    lines = str(info.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}:9: step 5 `alice: play_tone 1000 Hz`: "
                               "not supported by engine own: play_tone needs media")
    assert lines[1].startswith(f"{path}:10: step 6 `bruno: expect_tone 1000 Hz`: ")
    assert engine_issues(load_scenario(path), "pjsua2") == []


def test_attended_transfer_is_refused_at_load_by_the_own_engine_only(tmp_path: Path) -> None:
    """pjsua2 plays an attended transfer (REFER with Replaces, issue 16); the own engine
    does not and says so at load."""
    path = _write(tmp_path, TONE.replace(
        "  - alice: {play_tone: {frequency: 1000, seconds: 1}}\n",
        "  - alice: {transfer: {method: attended}}\n"))
    with pytest.raises(ScenarioFileError, match=r":9: step 5 .*engine own: attended"):
        load_scenario(path, "own")
    assert load_scenario(path, "pjsua2") is not None


def test_a_carrier_phone_is_checked_against_the_own_engine(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "phones:\n  alice: {account: '501410', password: demo-501410}\n"
        "  carrier: {kind: carrier}\n"
        "steps:\n  - alice: register\n  - carrier: {expect_dtmf: '1'}\n"))
    with pytest.raises(ScenarioFileError, match=r":6: step 2 .*engine own: expect_dtmf"):
        load_scenario(path, "pjsua2")


def test_scenario_main_refuses_the_file_before_starting_anything(tmp_path: Path) -> None:
    path = _write(tmp_path, TONE)
    out = io.StringIO()
    # no --target: a switch would be started for a loadable scenario; none is here
    assert scenario_main([str(path)], None, "own", None, out) == 1
    text = out.getvalue()
    assert f"ERROR {path}:9: step 5" in text
    assert "started a switch" not in text
    assert text.rstrip().endswith("0 passed, 1 failed")


def test_escape_user_follows_rfc_3261_user_part() -> None:
    assert escape_user("#21") == "%2321"
    assert escape_user("*45") == "*45"
    assert escape_user("501410") == "501410"
    assert escape_user("+33 5") == "+33%205"


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    tmp = tmp_path_factory.mktemp("hash")
    running = start_switch(tmp, run_config(tmp))
    yield running
    running.stop()


def test_the_own_engine_dials_a_hash_and_gets_a_final_response(tmp_path: Path,
                                                              switch: SwitchProcess) -> None:
    path = _write(tmp_path, (
        "phones:\n  alice: {account: '501410', password: demo-501410}\n"
        "steps:\n  - alice: register\n  - alice: {dial: '#21'}\n"
        # 200: the switch unescaped %23, read #21 as the forward_always_off code and
        # answered it (issue 15: it confirms and hangs up; it answered 501 before)
        "  - alice: {expect_status: 200}\n"
        "  - alice: {expect_state: disconnected, timeout: 15}\n"),
        "hash.yaml")
    pump = Pump()
    engine = make_engine("own", pump)
    out = io.StringIO()
    assert switch.carrier is not None
    try:
        results = asyncio.run(play([load_scenario(path, "own")], (switch.host, switch.port),
                                   engine, pump, out, str(switch.data_dir),
                                   carrier=f"{switch.carrier[0]}:{switch.carrier[1]}"))
    finally:
        asyncio.run(engine.close())
    assert results[0].passed, out.getvalue() + results[0].failure
