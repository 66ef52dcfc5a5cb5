"""Device inventory: what a device is, read from what it sends when it registers. Pure.

A desk phone, DECT base or softphone says who it is in its User-Agent header (RFC 3261
section 20.41: product tokens and comments, free form in practice). `identify` turns that
text into vendor, model and firmware with one pattern per family of common phones, and
learns the device's MAC address when it can be read:

- from the User-Agent, where some vendors put it (Cisco SPA/MPP "(0011223344aa)", Fanvil and
  Gigaset a trailing MAC);
- from a `+sip.instance` URN (RFC 5626 section 4.1) that is a time-based UUID (RFC 4122
  section 4.1.6: version 1, node = the IEEE 802 address). A node with the multicast bit
  set is random (RFC 4122 section 4.5), not a MAC, and is ignored.

Nothing here is trusted for authentication: it is inventory, shown to operators.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    vendor: str | None
    model: str | None
    firmware: str | None
    mac: str | None  # "aa:bb:cc:dd:ee:ff", lower case

    @property
    def label(self) -> str:
        """"Vendor Model" or what is known of it (for listings)."""
        return " ".join(p for p in (self.vendor, self.model) if p) or "unknown"


_MAC_TEXT = r"(?:[0-9A-Fa-f]{2}[:-]?){5}[0-9A-Fa-f]{2}"

# (vendor, pattern with named groups model/fw/mac). First match wins; patterns are anchored
# on the vendor's own product token so one vendor's text cannot match another's.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (vendor, re.compile(pattern, re.IGNORECASE)) for vendor, pattern in (
        # "Yealink SIP-T46S 66.86.0.15", "Yealink W60B 77.85.0.20", "Yealink SIP-T54W 96.86.0.70"
        ("Yealink", r"^Yealink\s+(?:SIP[- ])?(?P<model>[A-Z]+\d+[A-Z0-9]*)\s+(?P<fw>[\d.]+)"),
        # "PolycomVVX-VVX_450-UA/6.4.3.5018", "PolyEdge-Edge_E450-UA/8.0.2.3267"
        ("Poly", r"^Poly(?:com)?(?:VVX|Edge|SoundPoint\w*|RealPresence\w*)?-"
                 r"(?P<model>[A-Za-z]+_?[A-Z]?\d+\w*)-UA/(?P<fw>[\d.]+)"),
        # "Cisco/SPA504G-7.6.2c (0011223344AA)(CCQ...)", "Cisco-CP6841-3PCC/11.3.1 (00ab11223344)"
        ("Cisco", r"^Cisco[-/](?P<model>SPA\d+\w*|CP-?\d+\w*|\d{4}\w*)"
                  r"(?:-3PCC)?[-/](?P<fw>[\w.()-]+?)(?:\s*\((?P<mac>[0-9A-Fa-f]{12})\))?(?:\(|\s|$)"),
        # "Grandstream GXP2170 1.0.11.3", "Grandstream GRP2612 1.0.5.67"
        ("Grandstream", r"^Grandstream\s+(?P<model>[A-Z]+\d+\w*)\s+(?P<fw>[\d.]+)"),
        # "snomD785/10.1.46.16", "snom D865/10.1.x"
        ("Snom", r"^snom\s*(?P<model>[A-Z]?\d+\w*)/(?P<fw>[\w.]+)"),
        # "Gigaset N510 IP PRO/42.250.00.000.000", "Gigaset N870 IP PRO/83.V2.11.0+build..."
        ("Gigaset", r"^Gigaset\s+(?P<model>[A-Z]+\d+\w*(?:\s+IP(?:\s+PRO)?)?)/(?P<fw>[\w.+-]+)"),
        # "Fanvil X4U 2.12.1 0c383e112233"
        ("Fanvil", r"^Fanvil\s+(?P<model>[A-Z]+\d+\w*)\s+(?P<fw>[\d.]+)(?:\s+(?P<mac>[0-9a-fA-F]{12}))?"),
        # "baresip v1.0.0 (x86_64/linux)"
        ("baresip", r"^(?P<model>baresip)\s+v?(?P<fw>[\d.]+)"),
        # "sipsak 0.9.8.1"
        ("sipsak", r"^(?P<model>sipsak)\s+(?P<fw>[\d.]+)"),
        # "PJSUA v2.15.1 Linux-6.1/x86_64/glibc-2.36", "pjsua2-test"
        ("PJSIP", r"^(?P<model>pjsua2?|pjsip)(?:[\s/-]+v?(?P<fw>\d[\w.]*))?"),
        # "Linphone/4.4.0 (belle-sip/4.4.0)", "LinphoneAndroid/4.6.1 (...) LinphoneSDK/5.0"
        ("Belledonne", r"^(?P<model>Linphone\w*)/(?P<fw>[\w.-]+)"),
        # "MicroSIP/3.21.3"
        ("MicroSIP", r"^(?P<model>MicroSIP)/(?P<fw>[\d.]+)"),
        # "Z 5.6.1 v2.10.19.9" (Zoiper)
        ("Zoiper", r"^Z\s+(?P<fw>\d[\d.]*)"),
    )
)
_ANY_MAC = re.compile(rf"(?<![0-9A-Fa-f]){_MAC_TEXT}(?![0-9A-Fa-f])")


def normalize_mac(text: str) -> str | None:
    """"0011223344AA", "00:11:22:33:44:aa" or "00-11-..." -> "00:11:22:33:44:aa"; None if
    it is not a unicast MAC of 12 hex digits (all zero, or multicast bit set)."""
    digits = re.sub(r"[:-]", "", text.strip()).lower()
    if len(digits) != 12 or not re.fullmatch(r"[0-9a-f]{12}", digits):
        return None
    if digits == "0" * 12 or int(digits[:2], 16) & 1:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def mac_from_instance(instance_id: str | None) -> str | None:
    """The MAC inside a `+sip.instance` "<urn:uuid:...>" of version 1 (time-based), if any."""
    if not instance_id:
        return None
    text = instance_id.strip().strip("<>")
    if not text.lower().startswith("urn:uuid:"):
        return None
    try:
        value = uuid.UUID(text[len("urn:uuid:"):])
    except ValueError:
        return None
    if value.version != 1:
        return None
    return normalize_mac(f"{value.node:012x}")


def identify(user_agent: str, instance_id: str | None = None) -> DeviceInfo:
    """Vendor, model, firmware and MAC of a device from its User-Agent and +sip.instance."""
    ua = user_agent.strip()
    vendor = model = firmware = mac = None
    for name, pattern in _PATTERNS:
        m = pattern.search(ua)
        if m is None:
            continue
        groups = m.groupdict()
        vendor, model = name, groups.get("model")
        firmware = groups.get("fw")
        if groups.get("mac"):
            mac = normalize_mac(groups["mac"])
        break
    if mac is None and vendor in ("Gigaset", "Fanvil", "Cisco"):
        # these put the MAC somewhere in the rest of the text
        found = _ANY_MAC.search(ua)
        mac = normalize_mac(found.group(0)) if found else None
    if mac is None:
        mac = mac_from_instance(instance_id)
    return DeviceInfo(vendor, model, firmware, mac)
