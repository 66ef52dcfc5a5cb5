"""`wte schedule set|list`: the night switch from the command line (issue 12)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialplan import ScheduleMode
from switch.__main__ import main
from switch.storage.engine import create_engine
from switch.storage.schedules import SqlScheduleModes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"

TWO_CUSTOMERS = """\
customers:
  - id: acme
    sip_domain: acme.example
    trunks: [{id: carrier, host: 127.0.0.1, port: 5999, trusted: ["127.0.0.1"]}]
    schedules: [{id: office, hours: {mon: "08:00-18:00"}}]
    sites:
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
  - id: globex
    sip_domain: globex.example
    trunks: [{id: carrier, host: 127.0.0.2, port: 5999, trusted: ["127.0.0.2"]}]
    schedules: [{id: office, hours: {tue: "08:00-18:00"}}, {id: shop, hours: {}}]
    sites:
      - code: "01"
        address: {street: Rue B, number: "2", postal_code: "35000", city: Rennes}
        numbers: ["+33223280400-+33223280499"]
        trunk: carrier
"""


def _rows(url: str) -> dict[tuple[str, str], ScheduleMode]:
    async def read() -> dict[tuple[str, str], ScheduleMode]:
        engine = create_engine(url)
        try:
            return {(r.customer, r.schedule): r.mode for r in await SqlScheduleModes(engine).all()}
        finally:
            await engine.dispose()
    return asyncio.run(read())


def _table(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    lines = text.strip().splitlines()
    assert lines[0] == "customer\tschedule\tmode\topen_now\tchanged_at\tchanged_by"
    out = {}
    for line in lines[1:]:
        customer, schedule, mode, open_now, _at, _by = line.split("\t")
        out[(customer, schedule)] = (mode, open_now)
    return out


def _wte(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "switch", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_set_then_list_as_an_operator_types_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _wte("schedule", "set", "office", "closed", "--config", str(EXAMPLE),
                "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert _table(done.stdout) == {("acme", "office"): ("closed", "no")}
    listed = _wte("schedule", "list", "--config", str(EXAMPLE), "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    assert _table(listed.stdout) == {("acme", "office"): ("closed", "no")}
    done = _wte("schedule", "set", "office", "open", "--config", str(EXAMPLE),
                "--data-dir", str(data))
    assert _table(done.stdout) == {("acme", "office"): ("open", "yes")}


def test_bad_schedule_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _wte("schedule", "set", "ofice", "closed", "--config", str(EXAMPLE),
                "--data-dir", str(data))
    assert done.returncode != 0
    assert "no schedule 'ofice'" in done.stderr and "acme/office" in done.stderr
    assert not data.exists()  # not even an empty database
    bad_mode = _wte("schedule", "set", "office", "shut", "--config", str(EXAMPLE),
                    "--data-dir", str(data))
    assert bad_mode.returncode == 2 and "invalid choice" in bad_mode.stderr
    assert not data.exists()


@pytest.fixture
def two_customers(tmp_path: Path) -> Path:
    path = tmp_path / "two.yaml"
    path.write_text(TWO_CUSTOMERS)
    return path


def test_ambiguous_id_needs_the_customer(db_url: str, two_customers: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)  # the CLI opens what the switch opens
    cfg = ["--config", str(two_customers), "--data-dir", str(tmp_path)]
    assert main(["schedule", "set", "office", "closed", *cfg]) == 1
    err = capsys.readouterr().err
    assert "several customers (acme, globex)" in err and "--customer" in err
    assert main(["schedule", "set", "office", "closed", "--customer", "nobody", *cfg]) == 1
    assert "no customer 'nobody'" in capsys.readouterr().err
    assert main(["schedule", "set", "shop", "open", "--customer", "acme", *cfg]) == 1
    capsys.readouterr()
    assert main(["schedule", "set", "office", "closed", "--customer", "globex", *cfg]) == 0
    assert main(["schedule", "set", "shop", "open", *cfg]) == 0  # unique: no --customer
    assert _rows(db_url) == {("globex", "office"): ScheduleMode.CLOSED,
                             ("globex", "shop"): ScheduleMode.OPEN}
    capsys.readouterr()
    assert main(["schedule", "list", *cfg]) == 0
    table = _table(capsys.readouterr().out)
    assert {k: v[0] for k, v in table.items()} == {
        ("acme", "office"): "auto", ("globex", "office"): "closed", ("globex", "shop"): "open"}
    assert table[("globex", "shop")][1] == "yes" and table[("globex", "office")][1] == "no"
    assert main(["schedule", "set", "office", "auto", "--customer", "globex", *cfg]) == 0
    assert _rows(db_url)[("globex", "office")] is ScheduleMode.AUTO


def test_broken_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("customers: []\n")
    assert main(["schedule", "set", "office", "closed", "--config", str(bad),
                 "--data-dir", str(tmp_path / "d")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
