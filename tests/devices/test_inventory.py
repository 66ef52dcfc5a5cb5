"""Device inventory: vendor, model, firmware and MAC from User-Agent and +sip.instance."""

from __future__ import annotations

import pytest

from devices.inventory import DeviceInfo, identify, mac_from_instance, normalize_mac


@pytest.mark.parametrize(("agent", "expected"), [
    ("Yealink SIP-T46S 66.86.0.15", ("Yealink", "T46S", "66.86.0.15", None)),
    ("Yealink W60B 77.85.0.20", ("Yealink", "W60B", "77.85.0.20", None)),
    ("PolycomVVX-VVX_450-UA/6.4.3.5018", ("Poly", "VVX_450", "6.4.3.5018", None)),
    ("PolyEdge-Edge_E450-UA/8.0.2.3267", ("Poly", "Edge_E450", "8.0.2.3267", None)),
    ("Cisco/SPA504G-7.6.2c (0011223344AA)(CCQ1234)", ("Cisco", "SPA504G", "7.6.2c", "00:11:22:33:44:aa")),
    ("Cisco-CP6841-3PCC/11.3.1 (00ab11223344)", ("Cisco", "CP6841", "11.3.1", "00:ab:11:22:33:44")),
    ("Grandstream GRP2612 1.0.5.67", ("Grandstream", "GRP2612", "1.0.5.67", None)),
    ("snomD785/10.1.46.16", ("Snom", "D785", "10.1.46.16", None)),
    ("Gigaset N510 IP PRO/42.250.00.000.000", ("Gigaset", "N510 IP PRO", "42.250.00.000.000", None)),
    ("Fanvil X4U 2.12.1 0c383e112233", ("Fanvil", "X4U", "2.12.1", "0c:38:3e:11:22:33")),
    ("baresip v1.0.0 (x86_64/linux)", ("baresip", "baresip", "1.0.0", None)),
    ("sipsak 0.9.8.1", ("sipsak", "sipsak", "0.9.8.1", None)),
    ("PJSUA v2.15.1 Linux-6.1/x86_64/glibc-2.36", ("PJSIP", "PJSUA", "2.15.1", None)),
    ("Linphone/4.4.0 (belle-sip/4.4.0)", ("Belledonne", "Linphone", "4.4.0", None)),
    ("MicroSIP/3.21.3", ("MicroSIP", "MicroSIP", "3.21.3", None)),
    ("", (None, None, None, None)),
    ("SomethingElse/1.0", (None, None, None, None)),
])
def test_common_user_agents(agent: str, expected: tuple[str | None, ...]) -> None:
    assert identify(agent) == DeviceInfo(*expected)


def test_mac_from_a_time_based_instance_urn() -> None:
    # RFC 4122 version 1: the node is the MAC (00:04:f2 is a Polycom OUI)
    assert mac_from_instance("<urn:uuid:00000000-0000-1000-8000-0004f2aabbcc>") == "00:04:f2:aa:bb:cc"
    assert identify("PolycomVVX-VVX_450-UA/6.4.3.5018",
                    "<urn:uuid:00000000-0000-1000-8000-0004f2aabbcc>").mac == "00:04:f2:aa:bb:cc"
    # version 4 (random) and a random node (multicast bit set) carry no MAC
    assert mac_from_instance("<urn:uuid:2f1c9a0e-8a3b-4c47-9d2f-6f0c3e1b7a55>") is None
    assert mac_from_instance("<urn:uuid:00000000-0000-1000-8000-0104f2aabbcc>") is None
    assert mac_from_instance("<urn:foo:bar>") is None and mac_from_instance(None) is None
    assert mac_from_instance("<urn:uuid:not-a-uuid>") is None


def test_normalize_mac() -> None:
    assert normalize_mac("00-04-F2-AA-BB-CC") == normalize_mac("0004f2aabbcc") == "00:04:f2:aa:bb:cc"
    assert normalize_mac("000000000000") is None and normalize_mac("0004f2aabb") is None
    assert normalize_mac("zz04f2aabbcc") is None
