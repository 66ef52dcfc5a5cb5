"""The services the switch runs beside the SIP core, built from the configuration."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from devices.accounts import Account, ha1
from dialplan import Plan, PlanHolder, User, load_plan_data
from dialplan.yamlsource import YamlSource
from switch.admin.http import HttpApi
from switch.call_targets import aor_key
from switch.calls import CallService
from switch.cdr_writer import CdrWriter
from switch.emergency_service import EmergencyService
from switch.keepalive import NatKeepalive
from switch.media_service import MediaService
from switch.registration import RegistrationService

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch")


class PlanAccounts:
    """The SIP accounts of the running plan, rebuilt whenever the plan is reloaded."""

    def __init__(self, holder: PlanHolder) -> None:
        self.holder = holder
        self._generation = -1
        self._accounts: dict[tuple[str, str], Account] = {}
        self._users: dict[str, User] = {}
        self._refresh()

    def _refresh(self) -> None:
        if self._generation == self.holder.generation:
            return
        accounts: dict[tuple[str, str], Account] = {}
        users: dict[str, User] = {}
        for user in self.holder.plan.users:
            cred = user.sip
            if cred.ha1_md5 is None and cred.ha1_sha256 is None:
                continue
            aor = aor_key(user)
            users[aor] = user
            accounts[(cred.username, cred.realm)] = Account(
                cred.username, cred.realm, cred.ha1_md5 or "", cred.ha1_sha256 or "", aor,
                max_contacts=user.devices,
            )
        self._accounts, self._users = accounts, users
        self._generation = self.holder.generation

    def find(self, username: str, realm: str) -> Account | None:
        self._refresh()
        return self._accounts.get((username, realm))

    def user_for_aor(self, aor: str) -> User | None:
        self._refresh()
        return self._users.get(aor)

    def realm_for_host(self, host: str) -> str:
        plan = self.holder.plan
        customer = plan.customer_for_domain(host)
        if customer is None and len(plan.customers) == 1:
            customer = plan.customers[0]
        return customer.realm if customer is not None else host

    def demo_password_accounts(self) -> list[str]:
        """Accounts whose password is still the documented demo one (`demo-` + user name)."""
        self._refresh()
        return sorted(
            a.username for a in self._accounts.values()
            if a.ha1_md5 == ha1(a.username, a.realm, f"demo-{a.username}", "MD5")
        )


class PlanService:
    """Holds the dialplan; SIGHUP reloads it, keeping the old one when the new one is refused."""

    def __init__(self, holder: PlanHolder, path: str) -> None:
        self.holder = holder
        self.path = path

    async def start(self, switch: Switch) -> None:
        plan = self.holder.plan
        log.info("dialplan loaded customers=%d users=%d", len(plan.customers), len(plan.users))

    async def stop(self, switch: Switch) -> None:
        return None

    def reload(self, switch: Switch) -> None:
        issues = self.holder.reload(self.path)
        if issues:
            for issue in issues:
                log.error("dialplan reload refused: %s", issue)
            log.error("the running dialplan stays in place")
        else:
            log.info("dialplan reloaded generation=%d", self.holder.generation)


def build_services(switch: Switch, source: YamlSource) -> list[Any]:
    plan: Plan = load_plan_data(source)
    holder = PlanHolder(plan)
    accounts = PlanAccounts(holder)
    demo = accounts.demo_password_accounts()
    if demo:
        log.warning("demo passwords in use for %d accounts (%s): change them before exposing "
                    "this switch", len(demo), ", ".join(demo[:5]))
    registration = RegistrationService(accounts, accounts.realm_for_host)
    switch.plan_holder = holder
    switch.accounts = accounts
    switch.registration = registration
    calls = CallService(ring_timeout=switch.settings.calls.ring_timeout,
                        hunt_step=switch.settings.calls.hunt_step)
    records = CdrWriter()
    calls.records = records
    media_settings = switch.settings.media
    media = MediaService(switch.settings.sip.host, media_settings.port_min, media_settings.port_max)
    calls.media = media
    emergency = EmergencyService(
        callback_window=switch.settings.emergency.callback_minutes * 60,
        webhook_url=switch.settings.emergency.webhook_url)
    calls.emergency = emergency
    http = HttpApi(switch.options.sip_host or switch.settings.sip.host, switch.http_port())
    switch.calls = calls
    # order matters: registration migrates the database before the record writer opens it
    keepalive = NatKeepalive(switch.settings.registrar.nat_ping_interval)
    return [PlanService(holder, str(switch.options.config)), registration, records, media,
            emergency, calls, http, keepalive]
