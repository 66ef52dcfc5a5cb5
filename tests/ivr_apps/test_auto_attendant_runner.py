"""The auto-attendant through the one application runner, with the shipped French prompts
and a fake media endpoint: what a live call performs, without sockets."""

from __future__ import annotations

from pathlib import Path

from dialplan import load_plan
from ivr.application import CallInfo, Digit, DigitSource, TransferFailed
from ivr.auto_attendant import AutoAttendantApp
from media import DtmfDigit, DtmfSource
from switch.services.applications import ApplicationRunner, PromptLibrary
from tests.services.test_runner import Control, FakeMedia, settle

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
INFO = CallInfo("aa-run-1", "+33612345678", "sip:+33562070400@h", "tok")


def _runner(tmp_path: Path) -> tuple[ApplicationRunner, FakeMedia, Control]:
    aa = load_plan(str(EXAMPLE)).customers[0].sites[0].auto_attendants[0]
    media, control = FakeMedia(), Control()
    runner = ApplicationRunner(AutoAttendantApp.for_entity(aa, INFO), media, control, INFO,
                               recordings=tmp_path, prompts=PromptLibrary(tmp_path))
    return runner, media, control


async def test_shipped_prompts_play_and_a_key_transfers(tmp_path: Path) -> None:
    runner, media, control = _runner(tmp_path)
    runner.start()
    runner.answered()
    # aa-welcome and aa-menu found among the shipped prompts (8 kHz WAV)
    assert media.calls == ["play 2 interruptible=True"]
    media.digits.put_nowait(DtmfDigit("0", 80, DtmfSource.RFC4733))
    await settle()
    assert media.calls[-1] == "play 1 interruptible=False"  # aa-transfer
    assert media.played is not None
    media.played.set_result(True)
    await settle()
    assert control.done == ["transfer 501410"]
    # the target was busy: "unavailable", then the menu again
    runner.deliver(TransferFailed("501410", 486))
    assert media.calls[-1] == "play 2 interruptible=True"
    await runner.close()


async def test_an_extension_sent_by_sip_info_stops_the_greeting(tmp_path: Path) -> None:
    runner, media, control = _runner(tmp_path)
    runner.start()
    runner.answered()
    for d in "411":
        runner.deliver(Digit(d, DigitSource.INFO, 100))
    assert media.calls == ["play 2 interruptible=True", "stop", "play 1 interruptible=False"]
    assert media.played is not None
    media.played.set_result(True)
    await settle()
    assert control.done == ["transfer 501411"]
    await runner.close()
