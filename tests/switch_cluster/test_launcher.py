"""`wte cluster up`'s pure helpers: ports, dispatcher list, the rendered edge config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from switch.cluster.launcher import (
    TEMPLATE,
    dispatcher_list,
    kamailio_binary,
    kamailio_modules,
    node_command,
    node_specs,
    render_kamailio,
    write_edge,
)


def test_nodes_get_their_own_ports_ids_rtp_and_data(tmp_path: Path) -> None:
    nodes = node_specs(3, "127.0.0.1", 5060, tmp_path)
    assert [n.sip_port for n in nodes] == [5070, 5080, 5090]
    assert [n.node_id for n in nodes] == ["node1", "node2", "node3"]
    assert nodes[0].rtp[1] < nodes[1].rtp[0] and nodes[2].rtp[1] <= 29999
    assert len({n.data_dir for n in nodes}) == 3
    cmd = node_command(nodes[1], Path("config/example.yaml"))
    assert cmd[cmd.index("--node-id") + 1] == "node2"
    assert cmd[cmd.index("--sip-port") + 1] == "5080"
    with pytest.raises(ValueError):
        node_specs(0, "127.0.0.1", 5060, tmp_path)


def test_dispatcher_list_names_every_node(tmp_path: Path) -> None:
    text = dispatcher_list(node_specs(2, "10.0.0.5", 5060, tmp_path))
    assert "1 sip:10.0.0.5:5070 0 0" in text and "1 sip:10.0.0.5:5080 0 0" in text


def test_template_renders_without_placeholders(tmp_path: Path) -> None:
    text = render_kamailio(TEMPLATE.read_text(encoding="utf-8"), host="192.0.2.1", port=5060,
                           dispatcher=tmp_path / "d.list", modules="/m")
    assert "listen=udp:192.0.2.1:5060" in text and str(tmp_path / "d.list") in text
    assert "{{" not in text.replace("{{...}}", "")
    for needed in ("ds_select_dst", "add_path_received", "record_route", "loose_route",
                   '"ds_ping_method", "OPTIONS"'):
        assert needed in text
    with pytest.raises(ValueError):
        render_kamailio("listen={{NOPE}}", host="h", port=1, dispatcher=tmp_path, modules="/m")


@pytest.mark.skipif(kamailio_binary() is None or kamailio_modules() is None,
                    reason="kamailio is not installed")
def test_kamailio_accepts_the_generated_configuration(tmp_path: Path) -> None:
    cfg = write_edge(tmp_path, "127.0.0.1", 35999, node_specs(2, "127.0.0.1", 35999, tmp_path))
    binary = kamailio_binary() or shutil.which("kamailio")
    assert binary is not None
    out = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cluster_up_needs_postgresql(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import io

    from switch.__main__ import build_parser
    from switch.cluster.launcher import cluster_up

    args = build_parser().parse_args(["cluster", "up", "--nodes", "2", "--run-dir",
                                      str(tmp_path)])
    for url in ("", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"):
        monkeypatch.setenv("DATABASE_URL", url)
        out = io.StringIO()
        assert cluster_up(args, out) == 2
        assert "PostgreSQL" in out.getvalue()
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_serve_refuses_a_bad_node_id() -> None:
    from switch.__main__ import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--node-id", "no spaces allowed"])
    args = build_parser().parse_args(["serve", "--node-id", "edge-a.node_1"])
    assert args.node_id == "edge-a.node_1"
