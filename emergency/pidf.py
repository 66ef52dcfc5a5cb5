"""PIDF-LO location objects for emergency calls (RFC 4119, civic address RFC 5139, profile
RFC 5491), conveyed by reference from a `Geolocation` header (RFC 6442 section 4.1).

French emergency rules (CPCE D.98-8) require the caller's location to reach the PSAP; for a
fixed line it is the civic address of the site where the device is installed.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_GP = "urn:ietf:params:xml:ns:pidf:geopriv10"
NS_CA = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
CONTENT_TYPE = "application/pidf+xml"

ET.register_namespace("", NS_PIDF)
ET.register_namespace("gp", NS_GP)
ET.register_namespace("ca", NS_CA)
ET.register_namespace("dm", NS_DM)


# What XML 1.0 cannot carry at all (section 2.2 Char): C0 controls but tab/LF/CR, lone
# surrogates, U+FFFE/U+FFFF. ElementTree escapes <, & and quotes, but writes these raw,
# and a PSAP's parser then rejects the whole document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Line breaks and other controls are legal XML but meaningless in an address element.
_SPACES = re.compile("[\t\n\r\x7f-\x9f\u2028\u2029]+")


def xml_text(value: str) -> str:
    """`value` as an element's text: invalid characters dropped, breaks made spaces. The
    HTTP API refuses such input already (emergency.locations.check_text); this holds for
    every other source (site YAML, older stored declarations)."""
    return _SPACES.sub(" ", _NOT_XML.sub("", value)).strip()


@dataclass(frozen=True, slots=True)
class CivicLocation:
    """The RFC 5139 elements we fill; empty strings are left out."""

    country: str
    city: str  # A3
    street: str  # RD
    number: str  # HNO
    postal_code: str  # PC
    extra: str = ""  # LOC: building, floor, room
    name: str = ""  # NAM: the site's name
    method: str = "Manual"  # RFC 4119 method: how the location was obtained


def build_pidf_lo(entity: str, location: CivicLocation, device_id: str,
                  now: dt.datetime | None = None) -> bytes:
    """A PIDF-LO document with one device and its civic address (RFC 5491 section 3.4)."""
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    presence = ET.Element(f"{{{NS_PIDF}}}presence", {"entity": xml_text(entity)})
    device = ET.SubElement(presence, f"{{{NS_DM}}}device", {"id": xml_text(device_id)})
    geopriv = ET.SubElement(device, f"{{{NS_GP}}}geopriv")
    info = ET.SubElement(geopriv, f"{{{NS_GP}}}location-info")
    civic = ET.SubElement(info, f"{{{NS_CA}}}civicAddress",
                          {"{http://www.w3.org/XML/1998/namespace}lang": "fr"})
    for tag, value in (("country", location.country), ("A3", location.city),
                       ("RD", location.street), ("HNO", location.number),
                       ("LOC", location.extra), ("NAM", location.name),
                       ("PC", location.postal_code)):
        value = xml_text(value)
        if value:
            ET.SubElement(civic, f"{{{NS_CA}}}{tag}").text = value
    rules = ET.SubElement(geopriv, f"{{{NS_GP}}}usage-rules")
    ET.SubElement(rules, f"{{{NS_GP}}}retransmission-allowed").text = "yes"
    ET.SubElement(geopriv, f"{{{NS_GP}}}method").text = xml_text(location.method)
    ET.SubElement(device, f"{{{NS_DM}}}deviceID").text = xml_text(device_id)
    ET.SubElement(device, f"{{{NS_DM}}}timestamp").text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    body: bytes = ET.tostring(presence, encoding="utf-8", xml_declaration=True)
    return body


def parse_civic(body: bytes) -> dict[str, str]:
    """The civic address elements of a PIDF-LO (tests and tools)."""
    root = ET.fromstring(body)
    civic = root.find(f".//{{{NS_CA}}}civicAddress")
    if civic is None:
        return {}
    return {child.tag.split("}", 1)[1]: child.text or "" for child in civic}
