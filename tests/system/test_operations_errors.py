"""Operator mistakes at start (issue 20 item 8): one clear line naming the file and what to
do, exit status 2, never a traceback. Run as an operator would, through `wte`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.server import EXAMPLE_CONFIG, REPO, free_port_pair, write_config

GARBAGE = b"\x00\x13this is no database\xff" * 200
# `wte`'s main() with the storage guard (switch.storage.cli.guarded) around the command: the
# one-line wiring switch/__main__.py needs; tests run the real path through it until then
WIRED_MAIN = (
    "import sys\n"
    "import switch.__main__ as m\n"
    "from switch.storage.cli import guarded\n"
    "args = m.build_parser().parse_args(sys.argv[1:])\n"
    "m._setup_logging(args.log_level)\n"
    "sys.exit(guarded(args.func)(args))\n"
)
def _wte(*args: str, wired: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    head = [sys.executable, "-c", WIRED_MAIN] if wired else [sys.executable, "-m", "switch"]
    return subprocess.run([*head, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if " ERROR " in ln or ln.startswith("error:")]
    assert len(errors) == 1, text
    return errors[0]


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    (tmp_path / "wte.db").write_bytes(GARBAGE)
    return tmp_path


def _assert_corrupt_line(line: str, data_dir: Path) -> None:
    assert f"database {data_dir / 'wte.db'} is not an SQLite database" in line
    assert f"wte db upgrade --data-dir {data_dir}" in line


@pytest.mark.parametrize("wired", [True, False], ids=["guarded-main", "wte"])
def test_db_upgrade_on_a_corrupt_file(corrupt: Path, wired: bool) -> None:
    proc = _wte("db", "upgrade", "--data-dir", str(corrupt), wired=wired)
    _assert_corrupt_line(_one_error_line(proc), corrupt)
    assert proc.returncode == 2
    assert (corrupt / "wte.db").read_bytes() == GARBAGE


@pytest.mark.parametrize("wired", [True, False], ids=["guarded-main", "wte"])
def test_serve_on_a_corrupt_file(corrupt: Path, wired: bool) -> None:
    port = free_port_pair()
    config = write_config(corrupt / "config.yaml",
                          yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8")))
    proc = _wte("serve", "--config", str(config), "--sip-port", str(port),
                "--data-dir", str(corrupt), wired=wired)
    _assert_corrupt_line(_one_error_line(proc), corrupt)
    assert proc.returncode == 2
    assert " ready" not in proc.stderr


@pytest.mark.parametrize("command", ["calls", "registrations"])
def test_the_listing_commands_on_a_corrupt_file(corrupt: Path, command: str) -> None:
    proc = _wte(command, "--data-dir", str(corrupt))
    _assert_corrupt_line(_one_error_line(proc), corrupt)
    assert proc.returncode == 2


def _serve_refused(config: Path, data_dir: Path) -> str:
    proc = _wte("serve", "--config", str(config), "--sip-port", str(free_port_pair()),
                "--data-dir", str(data_dir))
    assert proc.returncode == 2, proc.stderr
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    refused = [ln for ln in text.splitlines() if "configuration refused" in ln]
    assert refused, text
    return "\n".join(refused)


def test_a_bad_setting_names_the_file_line_and_field(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8") + (
        "switch:\n  calls:\n    ring_timeout: -3\n")
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    ring_timeout: -3") + 1
    refused = _serve_refused(config, tmp_path / "var")
    assert f"{config}:{line}: switch.calls.ring_timeout: " in refused


def test_a_missing_configuration_file_is_named(tmp_path: Path) -> None:
    refused = _serve_refused(tmp_path / "nowhere.yaml", tmp_path / "var")
    assert f"{tmp_path / 'nowhere.yaml'}:0: <file>:" in refused


def test_a_missing_tls_certificate_is_refused_at_load_with_its_line(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8") + (
        "switch:\n  sip:\n    tls_cert: /nonexistent/cert.pem\n    tls_key: key.pem\n")
    config = tmp_path / "tls.yaml"
    config.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    refused = _serve_refused(config, tmp_path / "var")
    cert_line = lines.index("    tls_cert: /nonexistent/cert.pem") + 1
    key_line = lines.index("    tls_key: key.pem") + 1
    assert f"{config}:{cert_line}: switch.sip.tls_cert: /nonexistent/cert.pem: no such file" \
        in refused
    assert f"{config}:{key_line}: switch.sip.tls_key: key.pem: no such file" in refused


def test_a_bad_dialplan_entry_names_the_file_and_line(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        "    default_barring: no_premium", "    default_barring: no_such_profile", 1)
    config = tmp_path / "plan.yaml"
    config.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    default_barring: no_such_profile") + 1
    refused = _serve_refused(config, tmp_path / "var")
    assert f"{config}:{line}: " in refused and "default_barring" in refused
