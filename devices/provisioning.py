"""Zero-touch provisioning: activation codes, vendors by MAC, per-model templates and the
per-device credentials a phone receives. Pure: time is passed in, nothing here does I/O
except reading this package's own template files (`read_catalog`, `read_template`).

How a phone is put in service (service description 3.2.1 and 4.1):

1. a customer admin creates an **activation code** for a user or workspace line: 16 digits,
   single use, expiring (7 days by default). Only its hash is stored, like a password: a
   copy of the database does not let anyone claim a code;
2. the phone fetches its configuration over HTTP with its MAC in the file name or in its
   User-Agent and the code in the query. The MAC claims the code once; the switch
   **generates credentials for that device** (a random user name and password bound to the
   user's line, never the user's own password) and keeps only their HA1 digests (RFC 7616
   section 3.4.2), so the password exists only in the one response that carried it;
3. the phone registers with those credentials as the user's number; the registrar counts it
   against the pack's device limit like any other device.

A DECT base is one device (one MAC, one address) serving up to `lines` handsets, each a line
of its own with its own generated credentials (see devices/dect.py for the registrations).

Templates are data files in `devices/templates/` (one per model family), indexed by
`devices/templates/models.yaml` (which also holds the MAC OUI table). Their language is
deliberately tiny, so a template cannot run code:

    @format text|xml        how values are escaped (first line; text by default)
    @if NAME ... @end       lines kept when NAME is set and not empty
    @each NAME ... @end     lines repeated for each item of the list NAME
    ${name}                 a value; inside @each, the item's fields too
    #@ ...                  a comment of the template, not copied out
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

import yaml

from .accounts import ha1
from .inventory import identify, normalize_mac

CODE_DIGITS = 16
CODE_TTL = 7 * 86_400.0  # seconds a new activation code stays valid by default
PASSWORD_ALPHABET = string.ascii_letters + string.digits  # every phone's keypad and parser
PASSWORD_LENGTH = 24  # about 143 bits
DEVICE_USER_PREFIX = "d"  # plan users are numbers: a generated user name never collides


# -- activation codes --


def new_activation_code() -> str:
    """16 random decimal digits (a phone's keypad types them; about 53 bits, enough for a
    single-use, expiring code behind a throttle)."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def normalize_code(text: str | None) -> str | None:
    """"1234-5678 9012 3456" -> "1234567890123456"; None unless exactly 16 digits."""
    if text is None:
        return None
    digits = re.sub(r"[\s-]", "", text)
    return digits if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit() \
        else None


def display_code(code: str) -> str:
    """Grouped by four for people: "1234-5678-9012-3456"."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def code_hash(code: str) -> str:
    """What is stored instead of the code (SHA-256, domain-separated)."""
    return hashlib.sha256(f"wte-activation-code:{code}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ActivationCode:
    """One stored activation code: the line it provisions and whether it was claimed."""

    code_hash: str
    customer: str
    number: str  # the line's full internal number, "501412"
    aor: str  # the location key of the line, "acme:501412"
    created_at: float
    expires_at: float
    claimed_mac: str | None = None
    claimed_at: float | None = None


def new_code_record(customer: str, number: str, aor: str, now: float,
                    ttl: float = CODE_TTL) -> tuple[str, ActivationCode]:
    """A fresh code (shown once to the admin) and the record to store (its hash only)."""
    if ttl <= 0:
        raise ValueError("an activation code needs a positive lifetime")
    code = new_activation_code()
    return code, ActivationCode(code_hash(code), customer, number, aor, now, now + ttl)


class ClaimError(Exception):
    """Why a code cannot be claimed, with the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_claim(record: ActivationCode | None, now: float) -> ActivationCode:
    """The record if it may be claimed now; else ClaimError: 404 unknown, 410 used or
    expired (RFC 9110 section 15.5.11: gone, and it will not come back)."""
    if record is None:
        raise ClaimError(404, "unknown activation code")
    if record.claimed_mac is not None:
        raise ClaimError(410, "activation code already used")
    if now >= record.expires_at:
        raise ClaimError(410, "activation code expired")
    return record


# -- MAC addresses and vendors --

# an optional vendor prefix of letters, 12 hex digits, an optional "-phone"-like suffix
_MAC_IN_NAME = re.compile(r"[A-Za-z]*?([0-9A-Fa-f]{12})(?:[-_][\w-]*)?(?:\.\w+)?")


def mac_from_path(name: str) -> str | None:
    """The MAC in a requested file name: "001565aabbcc.cfg" (Yealink, Poly),
    "spa000e08aabbcc.xml" (Cisco), "cfg000b82aabbcc.xml" (Grandstream)... The common
    files of a model ("y000000000028.cfg") name no device: 00:00:00 is no phone's OUI."""
    found = _MAC_IN_NAME.fullmatch(name)
    mac = normalize_mac(found.group(1)) if found else None
    return None if mac is None or mac.startswith("00:00:00") else mac


def mac_from_user_agent(user_agent: str) -> str | None:
    """Most phones name their MAC in the User-Agent of their provisioning requests
    ("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc")."""
    found = re.search(r"(?<![0-9A-Fa-f:-])((?:[0-9A-Fa-f]{2}[:-]?){5}[0-9A-Fa-f]{2})"
                      r"(?![0-9A-Fa-f])", user_agent)
    return normalize_mac(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class ModelTemplate:
    """One entry of the catalog: which phones it serves and how."""

    name: str
    vendor: str
    models: re.Pattern[str]  # matched against the model `devices.inventory.identify` reads
    file: str
    content_type: str
    lines: int  # lines (or DECT handsets) the device serves
    dect: bool = False
    default: bool = False  # the vendor's template when only the OUI is known


@dataclass(frozen=True, slots=True)
class Catalog:
    templates: tuple[ModelTemplate, ...]
    ouis: Mapping[str, str]  # "00:15:65" -> "Yealink"

    def vendor_for_mac(self, mac: str | None) -> str | None:
        return self.ouis.get(mac[:8]) if mac else None

    def choose(self, user_agent: str, mac: str | None) -> ModelTemplate | None:
        """The template for a device: by the model its User-Agent names, else the default
        template of the vendor its MAC's OUI belongs to."""
        info = identify(user_agent)
        vendor = info.vendor or self.vendor_for_mac(mac)
        if vendor is None:
            return None
        if info.model:
            for t in self.templates:
                if t.vendor == vendor and t.models.fullmatch(info.model):
                    return t
        return next((t for t in self.templates if t.vendor == vendor and t.default), None)


def parse_catalog(text: str) -> Catalog:
    data = yaml.safe_load(text)
    templates = tuple(
        ModelTemplate(name=str(name), vendor=str(t["vendor"]),
                      models=re.compile(str(t["models"]), re.IGNORECASE), file=str(t["file"]),
                      content_type=str(t.get("content_type", "text/plain")),
                      lines=int(t.get("lines", 1)), dect=bool(t.get("dect", False)),
                      default=bool(t.get("default", False)))
        for name, t in data["templates"].items())
    ouis = {}
    for prefix, vendor in data["ouis"].items():
        mac = normalize_mac(f"{prefix}000000")
        if mac is None:
            raise ValueError(f"bad OUI {prefix!r} in the catalog")
        ouis[mac[:8]] = str(vendor)
    return Catalog(templates, ouis)


def read_catalog() -> Catalog:
    return parse_catalog(read_template("models.yaml"))


def read_template(file: str) -> str:
    """A file of devices/templates (package data)."""
    return resources.files(__package__).joinpath("templates", file).read_text("utf-8")


# -- per-device credentials --


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    """Generated credentials of one line of one device; HA1 digests only."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str
    aor: str
    mac: str
    line: int  # 1-based: the account slot, or the DECT handset
    created_at: float


def generate_credential(realm: str, aor: str, mac: str, line: int,
                        now: float) -> tuple[DeviceCredential, str]:
    """A random user name and password for one line of a device, and the record to keep
    (HA1s only). The password is returned once, to be put in the rendered configuration."""
    username = DEVICE_USER_PREFIX + secrets.token_hex(6)
    password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
    cred = DeviceCredential(username, realm, ha1(username, realm, password, "MD5"),
                            ha1(username, realm, password, "SHA-256"), aor, mac, line, now)
    return cred, password


# -- the configuration --


@dataclass(frozen=True, slots=True)
class LineConfig:
    index: int
    number: str  # the user's internal number, the SIP user of the line
    label: str
    auth_username: str
    password: str | None  # None: a known device re-reading its file keeps what it has


@dataclass(frozen=True, slots=True)
class Colleague:
    number: str
    name: str


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Everything a template may show."""

    mac: str
    server: str
    port: int
    transport: str  # "UDP", "TCP" or "TLS"
    domain: str
    timezone: str  # IANA name
    language: str  # ISO 639-1
    lines: tuple[LineConfig, ...]
    colleagues: tuple[Colleague, ...] = ()  # BLF keys
    voicemail_code: str | None = None
    firmware_url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


LANGUAGES = {"FR": "fr", "BE": "fr", "CH": "fr", "LU": "fr", "DE": "de", "AT": "de",
             "ES": "es", "IT": "it", "NL": "nl", "PT": "pt", "GB": "en", "US": "en"}
_LANGUAGE_NAMES = {"fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
                   "nl": "Dutch", "pt": "Portuguese", "en": "English"}


def language_for_country(country: str) -> str:
    return LANGUAGES.get(country.upper(), "en")


def _offset_seconds(timezone: str, now: float) -> int:
    offset = dt.datetime.fromtimestamp(now, ZoneInfo(timezone)).utcoffset() or dt.timedelta()
    return int(offset.total_seconds())


def utc_offset(timezone: str, now: float) -> str:
    """"+1" or "+5:30": the offset a phone without a zone database shows at `now`."""
    minutes = _offset_seconds(timezone, now) // 60
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h}" + (f":{m:02d}" if m else "")


_TRANSPORT_CODES = {"UDP": "0", "TCP": "1", "TLS": "2"}  # the numbers most vendors use


def template_values(cfg: DeviceConfig, now: float) -> dict[str, Any]:
    """The names a template sees."""
    lines = [{"line": str(ln.index), "line0": str(ln.index - 1), "number": ln.number, "label": ln.label,
              "auth_username": ln.auth_username, "password": ln.password or "",
              "has_password": "1" if ln.password else ""} for ln in cfg.lines]
    keys = [{"key": str(i), "number": c.number, "name": c.name}
            for i, c in enumerate(cfg.colleagues, start=len(cfg.lines) + 1)]
    return {
        "mac": cfg.mac, "mac_plain": cfg.mac.replace(":", ""), "server": cfg.server,
        "port": str(cfg.port), "transport": cfg.transport, "transport_lower":
        cfg.transport.lower(), "transport_code": _TRANSPORT_CODES.get(cfg.transport, "0"),
        "domain": cfg.domain, "timezone": cfg.timezone,
        "utc_offset": utc_offset(cfg.timezone, now),
        "utc_offset_seconds": str(_offset_seconds(cfg.timezone, now)), "language": cfg.language,
        "language_name": _LANGUAGE_NAMES.get(cfg.language, "English"),
        "lines": lines, "blf": keys, "voicemail_code": cfg.voicemail_code or "",
        "firmware_url": cfg.firmware_url or "", **dict(cfg.extra),
    }


class TemplateError(ValueError):
    """A template file that does not follow the little language (an operator's mistake)."""


def render(text: str, values: Mapping[str, Any]) -> str:
    """Render a template (the language is in this module's docstring). Every value is
    escaped for the file's format and stripped of line breaks, so a display name cannot
    add a setting to a phone's configuration."""
    lines = text.splitlines()
    fmt = "text"
    if lines and lines[0].startswith("@format"):
        fmt = lines[0].split()[1] if len(lines[0].split()) > 1 else "text"
        lines = lines[1:]
    if fmt not in ("text", "xml"):
        raise TemplateError(f"unknown @format {fmt!r}")
    out: list[str] = []
    _render_block(lines, 0, len(lines), dict(values), fmt, out)
    return "\n".join(out) + "\n"


def _block_end(lines: Sequence[str], start: int, stop: int) -> int:
    depth = 0
    for i in range(start, stop):
        word = lines[i].strip().split(" ", 1)[0]
        if word in ("@if", "@each"):
            depth += 1
        elif word == "@end":
            if depth == 0:
                return i
            depth -= 1
    raise TemplateError(f"@if/@each at line {start} has no @end")


def _render_block(lines: Sequence[str], start: int, stop: int, values: dict[str, Any],
                  fmt: str, out: list[str]) -> None:
    i = start
    while i < stop:
        raw = lines[i]
        stripped = raw.strip()
        if stripped.startswith("#@"):
            i += 1
            continue
        word, _, name = stripped.partition(" ")
        if word in ("@if", "@each"):
            end = _block_end(lines, i + 1, stop)
            value = values.get(name.strip())
            if word == "@if" and value:
                _render_block(lines, i + 1, end, values, fmt, out)
            elif word == "@each":
                if not isinstance(value, list):
                    raise TemplateError(f"@each {name.strip()}: not a list")
                for item in value:
                    _render_block(lines, i + 1, end, {**values, **item}, fmt, out)
            i = end + 1
            continue
        if word == "@end":
            raise TemplateError(f"@end without @if/@each at line {i}")
        safe = {k: _escape(v, fmt) for k, v in values.items() if isinstance(v, str)}
        try:
            out.append(string.Template(raw).substitute(safe))
        except (KeyError, ValueError) as exc:
            raise TemplateError(f"line {i}: unknown or bad placeholder {exc}") from None
        i += 1


def _escape(value: str, fmt: str) -> str:
    flat = re.sub(r"[\r\n\x00-\x1f]", " ", value)
    return xml_escape(flat, {'"': "&quot;", "'": "&apos;"}) if fmt == "xml" else flat
