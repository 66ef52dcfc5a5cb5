"""Bad configuration is refused with file, line and field; SIGHUP reloads the dialplan and a
refused reload keeps the running one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.pjphone import make_phone
from tests.support.server import EXAMPLE_CONFIG, REPO, start_switch


def serve_once(config: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switch", "serve", "--config", str(config), "--data-dir",
         str(data), "--sip-port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def test_bad_switch_setting_is_refused_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    config.write_text("switch:\n  sip:\n    port: not-a-port\n" + text, encoding="utf-8")
    out = serve_once(config, tmp_path / "var")
    assert out.returncode == 2
    assert f"{config}:3: switch.sip.port:" in out.stderr, out.stderr


def test_bad_plan_is_refused_with_every_error_and_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    broken = text.replace('"+33562070410"', '"+33562070410x"', 1)
    assert broken != text
    config.write_text(broken, encoding="utf-8")
    out = serve_once(config, tmp_path / "var")
    assert out.returncode == 2
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "+33562070410x" in ln)
    assert f"{config}:{line}:" in out.stderr, out.stderr


def wait_log(switch: Any, needle: str, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(needle in ln for ln in switch.log_lines):
            return True
        time.sleep(0.1)
    return False


def test_sighup_reload_refused_then_accepted(pj_lib: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    original = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    config.write_text(original, encoding="utf-8")
    switch = start_switch(tmp_path / "var", config=config)
    try:
        # a broken plan: refused, with the line, and the running plan stays
        config.write_text(original.replace('"+33562070410"', '"+3356207041"', 1), encoding="utf-8")
        switch.proc.send_signal(signal.SIGHUP)
        assert wait_log(switch, "dialplan reload refused"), switch.log_text()[-2000:]
        assert wait_log(switch, "the running dialplan stays in place")
        phone = make_phone(pj_lib, transport="UDP", user="501410", host=switch.host,
                           port=switch.port, password="demo-501410", register=True)
        try:
            assert phone.wait_registration(lambda e: e[0] == 200, since=0) is not None
        finally:
            phone.shutdown()
        # a valid change: accepted
        config.write_text(original.replace("name: ACME Industries", "name: ACME Group", 1),
                          encoding="utf-8")
        switch.proc.send_signal(signal.SIGHUP)
        assert wait_log(switch, "dialplan reloaded generation=1"), switch.log_text()[-2000:]
        assert switch.proc.poll() is None
    finally:
        switch.stop()
