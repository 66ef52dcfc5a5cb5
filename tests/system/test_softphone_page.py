"""The softphone page in a real headless Chromium (issue 23).

Chromium's fake capture device plays a 700 Hz WAV as the microphone; a pjsua2 phone
(501411) plays 440 Hz. The page signs in (short-lived credentials from the HTTP API),
registers over WS, calls the phone and answers the phone's call; the phone's recording
must hold 700 Hz, and what the page hears (its analyser, `softphone.heard()`) 440 Hz.

Chromium and chromedriver are Debian packages (`chromium`, `chromium-driver`); CI installs
them (.ci/run). Elsewhere, without them, these tests are skipped and say why.
"""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest

from tests.support.audio import dominant_frequency
from tests.support.pjphone import Phone, make_phone
from tests.support.server import RunningSwitch, start_switch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED
PAGE_HZ = 700.0
PHONE_HZ = 440.0

if CHROMIUM is None or CHROMEDRIVER is None:
    reason = ("chromium and chromedriver are not installed "
              "(apt-get install chromium chromium-driver)")
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must run the softphone page tests: {reason}")
    pytest.skip(reason, allow_module_level=True)

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = start_switch(tmp_path_factory.mktemp("softphone"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tone") / "tone.wav"
    rate = 48000
    t = np.arange(rate * 30) / rate  # Chromium loops the file
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * PAGE_HZ * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def chromium(tone: Path, *, microphone: bool = True) -> Any:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={tone}",
                 "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(flag)
    # the permission prompt answered yes, or no (the page must say the microphone is refused)
    opts.add_argument("--use-fake-ui-for-media-stream" + ("" if microphone else "=deny"))
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def phone(pj_lib: Any, switch: RunningSwitch) -> Iterator[Phone]:
    made = make_phone(pj_lib, transport="UDP", user="501411", host=switch.host,
                      port=switch.port, password="demo-501411", register=True)
    assert made.wait_registration(lambda e: e[0] == 200, since=0) is not None
    yield made
    made.shutdown()


@pytest.fixture(autouse=True)
def idle(pj_lib: Any, phone: Phone) -> Iterator[None]:
    phone.account.incoming.clear()
    yield
    for call in phone.account.incoming:
        call.stop_media()
    pj_lib.ep.hangupAllCalls()
    pj_lib.wait_until(lambda: False, 0.3)
    phone.account.answer_with = phone.account.tone_freq = phone.account.record_path = None


def sign_in(driver: Any, switch: RunningSwitch, pj_lib: Any) -> None:
    driver.get(f"http://{switch.host}:{switch.http_port}/softphone")
    driver.find_element(By.ID, "user").send_keys("501410")
    driver.find_element(By.ID, "password").send_keys("demo-501410")
    # Chromium's noise suppression takes a steady test tone for noise and removes most of
    # it: the page's "voice processing" box (on by default) is unticked, as for a headset
    driver.find_element(By.ID, "processing").click()
    driver.find_element(By.ID, "signin").click()
    assert pj_lib.wait_until(lambda: state(driver) == "registered", 10), page_text(driver)


def state(driver: Any) -> str:
    return str(driver.execute_script("return window.softphone.state()"))


def heard(driver: Any) -> dict[str, float]:
    return dict(driver.execute_script("return window.softphone.heard()"))


def page_text(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_page_calls_a_desk_phone_and_each_hears_the_other(
        pj_lib: Any, switch: RunningSwitch, phone: Phone, tone_wav: Path,
        tmp_path: Path) -> None:
    recording = tmp_path / "phone-heard.wav"
    phone.account.answer_with, phone.account.tone_freq = 200, PHONE_HZ
    phone.account.record_path = str(recording)
    driver = chromium(tone_wav)
    try:
        sign_in(driver, switch, pj_lib)
        driver.find_element(By.ID, "number").send_keys("501411")
        driver.find_element(By.ID, "call").click()
        assert pj_lib.wait_until(lambda: state(driver) == "active", 15), (
            page_text(driver), switch.log_text()[-3000:])
        pj_lib.wait_until(lambda: False, 4.0)
        got = heard(driver)
        assert abs(got["peakHz"] - PHONE_HZ) < 25 and got["rms"] > 0.01, got
        driver.find_element(By.ID, "hangup").click()
        assert pj_lib.wait_until(lambda: all(c.state == DISCONNECTED
                                             for c in phone.account.incoming), 5)
    finally:
        driver.quit()
    phone.account.incoming[0].stop_media()
    freq, level = dominant_frequency(recording, skip_seconds=1.0)
    assert abs(freq - PAGE_HZ) < 15 and level > 300, (freq, level)


def test_desk_phone_calls_the_page_which_answers(
        pj_lib: Any, switch: RunningSwitch, phone: Phone, tone_wav: Path,
        tmp_path: Path) -> None:
    recording = tmp_path / "phone-heard.wav"
    driver = chromium(tone_wav)
    try:
        sign_in(driver, switch, pj_lib)
        call = phone.call(f"sip:501410@{switch.host}:{switch.port}", tone_freq=PHONE_HZ,
                          record_path=str(recording))
        assert pj_lib.wait_until(lambda: state(driver) == "incoming", 10), page_text(driver)
        assert "501411" in page_text(driver) or "Call from" in page_text(driver)
        driver.find_element(By.ID, "answer").click()
        assert pj_lib.wait_until(lambda: call.state == CONFIRMED, 10), switch.log_text()[-3000:]
        pj_lib.wait_until(lambda: False, 4.0)
        got = heard(driver)
        assert abs(got["peakHz"] - PHONE_HZ) < 25 and got["rms"] > 0.01, got
        call.hangup(pj.CallOpParam(True))
        assert pj_lib.wait_until(lambda: state(driver) == "registered", 5), page_text(driver)
    finally:
        driver.quit()
    call.stop_media()
    freq, level = dominant_frequency(recording, skip_seconds=1.5)
    assert abs(freq - PAGE_HZ) < 15 and level > 300, (freq, level)


def test_a_refused_microphone_is_said_clearly(pj_lib: Any, switch: RunningSwitch,
                                              tone_wav: Path) -> None:
    driver = chromium(tone_wav, microphone=False)
    try:
        sign_in(driver, switch, pj_lib)
        driver.find_element(By.ID, "number").send_keys("501411")
        driver.find_element(By.ID, "call").click()
        assert pj_lib.wait_until(
            lambda: "Microphone access was refused" in page_text(driver), 5), page_text(driver)
        assert state(driver) == "registered"
    finally:
        driver.quit()
