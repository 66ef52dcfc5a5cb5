"""What a newcomer tripped over (issue 24): clear answers instead of tracebacks."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.cli import scenario_main
from tests.support.server import REPO

SCENARIO = REPO / "tests" / "scenarios" / "registration.yaml"


def test_sip_ports_inside_the_rtp_range_are_refused_with_the_field(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "switch", "serve", "--config", "config/example.yaml",
         "--sip-port", "25060", "--data-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 1, proc.stderr
    assert "config/example.yaml:" in errors[0] and "switch.media.port_min" in errors[0]
    assert "25060" in errors[0] and "Traceback" not in proc.stderr


def test_the_pjsua2_engine_without_pjsua2_says_how_to_get_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pjsua2", None)  # import pjsua2 -> ImportError
    out = io.StringIO()
    status = scenario_main([str(SCENARIO)], "127.0.0.1:9", "pjsua2", None, out)
    assert status == 2
    assert "pip install 'wte[pjsua2]'" in out.getvalue()


def test_rtp_ports_option_moves_the_range_and_is_checked(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "switch", "serve", "--config", "config/example.yaml",
         "--sip-port", "25060", "--rtp-ports", "25000-25100", "--data-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "the RTP range 25000-25100" in proc.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "switch", "serve", "--rtp-ports", "300-200"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "MIN-MAX" in bad.stderr
