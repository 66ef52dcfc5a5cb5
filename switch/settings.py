"""Typed switch settings: the `switch:` section of the configuration YAML.

Validation errors name the file, line and field (ConfigError from dialplan.yamlsource) so
an operator can fix them; the running configuration is kept when a reload is refused.
Files the settings name (the TLS certificate and key) are checked at load too, so a wrong
path is refused with its line instead of failing later while the transports start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialplan.yamlsource import ConfigError, ConfigIssue, YamlSource, load_yaml_file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SipSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=5060, ge=0, le=65535)
    tls_port: int | None = Field(default=None, ge=0, le=65535, description="default: port + 1")
    # SIP over WebSocket (RFC 7118), switch/transport/ws.py
    ws_port: int | None = Field(default=None, ge=0, le=65535, description="WS; default: port + 2")
    wss_port: int | None = Field(default=None, ge=0, le=65535, description="WSS; default: port + 3")
    tls_cert: str | None = None
    tls_key: str | None = None
    max_message_size: int = Field(default=65535, ge=1024, le=1_048_576)
    tcp_idle_timeout: float = Field(default=900.0, gt=0)
    # connection caps and deadlines of TCP/TLS/WS (switch.transport.limits, issue 20.3)
    max_connections_per_source: int = Field(default=256, ge=1)
    max_connections: int = Field(default=20_000, ge=1)
    handshake_timeout: float = Field(default=10.0, gt=0,
                                     description="TLS handshake, first message, partial message")
    unregistered_idle_timeout: float = Field(
        default=300.0, gt=0, description="idle close of a connection no REGISTER was accepted on")
    user_agent: str = "wte/0.1"


class TransactionSettings(_Strict):
    t1: float = Field(default=0.5, gt=0)
    t2: float = Field(default=4.0, gt=0)
    t4: float = Field(default=5.0, gt=0)


class RegistrarSettings(_Strict):
    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    default_expires: int = Field(default=3600, ge=1)
    max_contacts: int = Field(default=5, ge=1, le=100)
    sweep_interval: float = Field(default=30.0, gt=0)
    nat_ping_interval: float = Field(default=30.0, ge=0,
                                     description="UDP keep-alive OPTIONS; 0 = off")


class AuthSettings(_Strict):
    nonce_ttl: float = Field(default=300.0, gt=0)
    max_failures: int = Field(default=10, ge=1)
    failure_window: float = Field(default=60.0, gt=0)
    block_seconds: float = Field(default=300.0, ge=0)
    slow_after: int = Field(default=3, ge=1)


class CallLimitSettings(_Strict):
    """Concurrent calls and attempts per minute, per account and per site; the `costly`
    ones count international, premium and shared-cost destinations. 0 disables a limit.
    Emergency calls are never limited (dialplan.call_limits)."""

    account_concurrent: int = Field(default=6, ge=0)
    account_per_minute: int = Field(default=30, ge=0)
    account_costly_concurrent: int = Field(default=2, ge=0)
    account_costly_per_minute: int = Field(default=6, ge=0)
    site_concurrent: int = Field(default=200, ge=0)
    site_per_minute: int = Field(default=600, ge=0)
    site_costly_concurrent: int = Field(default=20, ge=0)
    site_costly_per_minute: int = Field(default=60, ge=0)


class CallSettings(_Strict):
    ring_timeout: float = Field(default=30.0, gt=0,
                                description="no answer after this: 480 to the caller")
    hunt_step: float = Field(default=15.0, gt=0, description="ring time per member when hunting")
    park_timeout: float = Field(default=60.0, gt=0, le=3600,
                                description="a parked call nobody retrieves rings its parker")
    limits: CallLimitSettings = Field(default_factory=lambda: CallLimitSettings(),
                                      description="per account and site (toll fraud brake)")


class MediaSettings(_Strict):
    port_min: int = Field(default=20000, ge=1024, le=65535,
                          description="RTP port range (even ports)")
    port_max: int = Field(default=29999, ge=1024, le=65535)


class EmergencySettings(_Strict):
    callback_minutes: float = Field(default=30.0, ge=0, description="PSAP call-back window")
    webhook_url: str | None = Field(default=None,
                                    description="POSTed a JSON event per emergency call")


class RatingSettings(_Strict):
    """The live minute pool of each site (issue 25, switch.services.pool)."""

    enabled: bool = Field(default=True, description="count each ended call against its pool")
    file: str | None = Field(default=None, description="bundle and tariff sheet YAML; default: "
                             "rating.yaml beside the configuration file (off when absent)")
    webhook_url: str | None = Field(default=None, description="POSTed a JSON event when a "
                                    "site's pool reaches 80 % and 100 %")
    catch_up_seconds: float = Field(default=300.0, gt=0, description="how often records "
                                    "ended but not yet counted (crash, database outage) are")
    refuse_past_pool: list[str] = Field(default_factory=list, description='"customer/site" '
                                        "entries: refuse (403) outgoing calls once the pool is "
                                        "used up; emergency calls always pass")
    refuse_not_included: list[str] = Field(default_factory=list, description='"customer/site"'
                                           " entries: refuse (403) calls to charged "
                                           "destinations (not included, premium)")

    @field_validator("refuse_past_pool", "refuse_not_included")
    @classmethod
    def _sites(cls, v: list[str]) -> list[str]:
        for entry in v:
            customer, sep, site = entry.partition("/")
            if not (customer and sep and site) or "/" in site:
                raise ValueError(f'{entry!r}: expected "customer/site", e.g. "acme/01"')
        return v

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v


class SubscriptionSettings(_Strict):
    """SUBSCRIBE (RFC 6665): Expires bounds and limits (issue 17)."""

    min_expires: int = Field(default=60, ge=1, description="shorter asks get 423 Min-Expires")
    max_expires: int = Field(default=3600, ge=1, description="longer asks are shortened")
    max_per_user: int = Field(default=200, ge=1, description="subscriptions one user may hold")
    max_per_source: int = Field(default=2000, ge=1,
                                description="subscriptions from one source address (a site "
                                            "NAT holds many phones)")
class SmtpSettings(_Strict):
    """The SMTP server voicemail e-mails new messages through (issue 13). Credentials are
    never in the YAML: `username_env`/`password_env` name environment variables."""

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = Field(default=False, description="STARTTLS (RFC 3207) before login")
    from_address: str = Field(default="messagerie@localhost", description="the From header")
    username_env: str | None = Field(default=None, description="env variable: SMTP user")
    password_env: str | None = Field(default=None, description="env variable: SMTP password")
    timeout: float = Field(default=15.0, gt=0, description="seconds per SMTP conversation")
    retry_initial: float = Field(default=30.0, gt=0,
                                 description="first retry after a failure; doubles each time")
    retry_max: float = Field(default=3600.0, gt=0, description="longest wait between retries")


class VoicemailSettings(_Strict):
    max_message_seconds: float = Field(default=180.0, ge=5, le=3600,
                                       description="longest message a caller may leave")
    smtp: SmtpSettings | None = Field(default=None,
                                      description="e-mail new messages (off when absent)")


class PerformanceSettings(_Strict):
    """Group commit deadlines and overload shedding (issue 21)."""

    binding_commit_delay: float = Field(
        default=0.002, ge=0, le=0.1,
        description="seconds the binding writer waits to group REGISTERs in one commit")
    record_commit_delay: float = Field(
        default=0.1, ge=0, le=5,
        description="seconds the call-record writer waits to group events in one commit")
    # 503 shedding is off by default: measured with SIPp past saturation it lowered the
    # successful REGISTER rate (a 401 or an OPTIONS costs what its 503 costs); see
    # bench/bench_levels.py and the issue 21 notes in the README
    overload_queue_delay: float = Field(
        default=0.0, ge=0, description="seconds a new UDP INVITE/REGISTER/SUBSCRIBE... may "
                                       "wait in the receive queue while the switch is "
                                       "saturated; past it: 503 + Retry-After; 0 = never")
    overload_drop_delay: float = Field(
        default=1.0, ge=0, description="seconds past which a datagram queued while the switch "
                                       "is saturated is dropped unread (its sender has "
                                       "retransmitted it); 0 = never")
    overload_retry_after: int = Field(default=5, ge=1, le=3600,
                                      description="Retry-After of the overload 503, seconds")


class HttpSettings(_Strict):
    port: int | None = Field(default=None, ge=0, le=65535, description="default: SIP port + 4")


class WebRtcSettings(_Strict):
    """Issue 23: browsers calling through the switch (switch/webrtc/)."""

    enabled: bool = Field(default=True, description="terminate WebRTC legs with aiortc")
    credential_ttl: float = Field(default=600.0, ge=60, le=86400, description="seconds a "
                                  "browser's short-lived SIP password lives (ttl to 2 ttl)")
    secret_env: str = Field(default="WTE_WEBRTC_SECRET", description="env variable holding "
                            "the credential secret (shared by every node); unset: a random "
                            "secret per process (credentials die with it)")
    prefer: list[str] = Field(default_factory=lambda: ["PCMU", "opus"], description="browser "
                              "codecs in preference order (PCMU: no Opus transcoding)")
    stun_servers: list[str] = Field(default_factory=list, description='"stun:host:port" '
                                    "for the gateway's ICE candidates behind NAT")
    max_legs: int = Field(default=200, ge=0, description="WebRTC legs at once (aiortc CPU)")
    public_ws_url: str | None = Field(default=None, description="the WebSocket URL browsers "
                                      "register on, when a TLS proxy (the portal's) serves "
                                      "WSS elsewhere; default: this switch's WS/WSS port")


class SwitchSettings(_Strict):
    sip: SipSettings = SipSettings()
    transaction: TransactionSettings = TransactionSettings()
    registrar: RegistrarSettings = RegistrarSettings()
    auth: AuthSettings = AuthSettings()
    calls: CallSettings = CallSettings()
    media: MediaSettings = MediaSettings()
    emergency: EmergencySettings = EmergencySettings()
    http: HttpSettings = HttpSettings()
    rating: RatingSettings = RatingSettings()
    subscriptions: SubscriptionSettings = SubscriptionSettings()
    voicemail: VoicemailSettings = VoicemailSettings()
    webrtc: WebRtcSettings = WebRtcSettings()  # issue 23
    performance: PerformanceSettings = PerformanceSettings()
    drain_seconds: float = Field(default=5.0, ge=0)


def settings_from_source(source: YamlSource) -> SwitchSettings:
    raw: Any = source.data.get("switch", {}) if isinstance(source.data, dict) else {}
    if raw is None:
        raw = {}
    try:
        settings = SwitchSettings.model_validate(raw)
    except ValidationError as exc:
        issues: list[ConfigIssue] = []
        for err in exc.errors():
            path = ("switch", *(p for p in err["loc"] if isinstance(p, str | int)))
            issues.append(source.issue(path, err["msg"]))
        raise ConfigError(issues) from None
    file_issues = _tls_file_issues(source, settings.sip)
    if file_issues:
        raise ConfigError(file_issues)
    return settings


def _tls_file_issues(source: YamlSource, sip: SipSettings) -> list[ConfigIssue]:
    """The certificate and key go together and must be readable files (paths relative to
    the directory the switch runs in, as the TLS transport opens them)."""
    given = {"tls_cert": sip.tls_cert, "tls_key": sip.tls_key}
    issues: list[ConfigIssue] = []
    for name, value in given.items():
        other = "tls_key" if name == "tls_cert" else "tls_cert"
        if value and not given[other]:
            issues.append(source.issue(("switch", "sip", other),
                                       f"missing: {name} is set, give {other} too (or neither, "
                                       "for a self-signed certificate in the data directory)"))
        if not value:
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            issues.append(source.issue(("switch", "sip", name),
                                       f"{path}: no such file (relative paths start from "
                                       f"{Path.cwd()})"))
        elif not os.access(path, os.R_OK):
            issues.append(source.issue(("switch", "sip", name), f"{path}: not readable"))
    return issues


def load_settings(path: str | Path) -> SwitchSettings:
    return settings_from_source(load_yaml_file(path))
