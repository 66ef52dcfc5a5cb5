"""Tests that coexist (issue 11): no test binds a fixed well-known port.

A test run must pass while another process holds the example trunk's 127.0.0.1:5090 and
while a switch serves on the default ports 5060-5064: the test carrier takes a free port,
the configuration a test switch gets points its trunk there, and a scan of the test and
bench sources finds no socket bound to a fixed port.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from scenarios.switchproc import (
    EXAMPLE_CONFIG,
    EXAMPLE_TRUNK,
    PORTS_PER_SWITCH,
    free_port_pair,
    move_example_trunk,
    run_config,
    trunk_address,
)
from tests.support.carrier import Carrier
from tests.support.server import config_with, write_config

REPO = Path(__file__).resolve().parents[1]


def _trunk(config: Path) -> dict[str, object]:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    trunk: dict[str, object] = data["customers"][0]["trunks"][0]
    return trunk


def test_the_example_still_names_the_well_known_trunk() -> None:
    """The contract for operators is unchanged; only test copies move."""
    assert trunk_address(EXAMPLE_CONFIG) == EXAMPLE_TRUNK


def test_the_carrier_takes_a_free_port() -> None:
    a, b = Carrier(), Carrier()
    try:
        assert a.port != EXAMPLE_TRUNK[1] and b.port != EXAMPLE_TRUNK[1]
        assert a.port != b.port  # two carriers (two test runs) on one host
    finally:
        a.close()
        b.close()


def test_config_with_points_the_trunk_at_the_carrier(tmp_path: Path) -> None:
    carrier = Carrier()
    try:
        config = config_with(tmp_path, {"calls.ring_timeout": 5}, carrier_port=carrier.port)
        trunk = _trunk(config)
        assert (trunk["host"], trunk["port"]) == ("127.0.0.1", carrier.port)
        assert trunk["trusted"] == [f"127.0.0.1:{carrier.port}"]
        assert trunk_address(config) == carrier.addr
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        assert data["switch"]["calls"]["ring_timeout"] == 5
    finally:
        carrier.close()


def test_every_generated_config_moves_the_trunk_off_5090(tmp_path: Path) -> None:
    for config in (run_config(tmp_path), config_with(tmp_path, {})):
        trunk = _trunk(config)
        assert trunk["port"] != 5090 and trunk["trusted"] != ["127.0.0.1:5090"]
        assert isinstance(trunk["port"], int) and 1024 < trunk["port"] < 65536
    # only when asked to keep the base's trunk does it stay
    kept = run_config(tmp_path, carrier_port=None, name="kept.yaml")
    assert trunk_address(kept) == EXAMPLE_TRUNK
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    written = write_config(tmp_path / "edited.yaml", data, carrier_port=40123)
    assert trunk_address(written) == ("127.0.0.1", 40123)


def test_move_leaves_other_trunks_and_trusted_entries_alone() -> None:
    data = {"customers": [{"trunks": [
        {"id": "a", "host": "127.0.0.1", "port": 5090,
         "trusted": ["127.0.0.1:5090", "192.0.2.1:5060", "127.0.0.1"]},
        {"id": "b", "host": "192.0.2.7", "port": 5090, "trusted": ["192.0.2.7:5090"]},
    ]}]}
    assert move_example_trunk(data, 41000) == 1
    a, b = data["customers"][0]["trunks"]
    assert a["port"] == 41000
    assert a["trusted"] == ["127.0.0.1:41000", "192.0.2.1:5060", "127.0.0.1"]
    assert b == {"id": "b", "host": "192.0.2.7", "port": 5090, "trusted": ["192.0.2.7:5090"]}


def test_free_port_pair_avoids_promised_ports() -> None:
    first = free_port_pair()
    avoid = {first + i for i in range(PORTS_PER_SWITCH)}
    for _ in range(5):
        port = free_port_pair(avoid=avoid)
        assert not avoid & {port + i for i in range(PORTS_PER_SWITCH)}


# -- a scan: no socket in tests/ or bench/ is bound to a fixed port ------------------------

def fixed_port_binds(root: Path) -> list[str]:
    """`x.bind((host, N))`, `Carrier(port=N)` / `Carrier(host, N)` and `*_port=N` keyword
    arguments with N a literal other than 0, in the Python files under `root`."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            port: ast.expr | None = None
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else (
                func.id if isinstance(func, ast.Name) else "")
            if name == "bind" and node.args and isinstance(node.args[0], ast.Tuple) \
                    and len(node.args[0].elts) >= 2:
                port = node.args[0].elts[1]
            elif name == "Carrier" and len(node.args) >= 2:
                port = node.args[1]
            for kw in node.keywords:
                if kw.arg in ("port", "local_port", "bind_port") and name in (
                        "Carrier", "bind", "create_datagram_endpoint", "create_server",
                        "start_server", "UdpClient"):
                    port = kw.value
            if isinstance(port, ast.Constant) and isinstance(port.value, int) and port.value:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} binds port "
                             f"{port.value}")
    return found


def test_the_scan_finds_a_planted_fixed_bind(tmp_path: Path) -> None:
    pkg = tmp_path / "tests"
    pkg.mkdir()
    # the planted file binds the example trunk's port and the SIP port: what the scan
    # must catch (this test itself only writes the text)
    trunk_port, sip_port = EXAMPLE_TRUNK[1], 5000 + 60
    (pkg / "test_bad.py").write_text(
        "import socket\n"
        "s = socket.socket()\n"
        f"s.bind(('127.0.0.1', {trunk_port}))\n"
        "ok = socket.socket()\nok.bind(('127.0.0.1', 0))\n"
        f"c = Carrier(port={sip_port})\n", encoding="utf-8")
    assert fixed_port_binds(pkg) == [f"tests/test_bad.py:3 binds port {trunk_port}",
                                     f"tests/test_bad.py:6 binds port {sip_port}"]


def test_no_test_or_bench_binds_a_fixed_port() -> None:
    found = fixed_port_binds(REPO / "tests") + fixed_port_binds(REPO / "bench")
    assert not found, "\n".join(found)


def test_a_test_switch_on_the_example_serves_a_copy_with_the_trunk_moved(tmp_path: Path) -> None:
    from tests.support.server import start_switch

    switch = start_switch(tmp_path)
    try:
        assert switch.config != EXAMPLE_CONFIG and switch.config.parent == tmp_path
        assert switch.carrier is not None and switch.carrier != EXAMPLE_TRUNK
        assert switch.carrier == trunk_address(switch.config)
    finally:
        assert switch.stop() == 0
