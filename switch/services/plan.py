"""The running dialplan (reloaded on SIGHUP) and the SIP accounts it declares."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from devices.accounts import Account, ha1
from devices.provisioning import DeviceCredential
from dialplan import Plan, PlanHolder, User
from switch.call_targets import aor_key

log = logging.getLogger("switch")


class PlanAccounts:
    """The SIP accounts of the running plan, rebuilt whenever the plan is reloaded."""

    def __init__(self, holder: PlanHolder) -> None:
        self.holder = holder
        self._generation = -1
        self._accounts: dict[tuple[str, str], Account] = {}
        self._users: dict[str, User] = {}
        # credentials the switch generated for provisioned devices (issue 19), by (user, realm)
        self._devices: dict[tuple[str, str], DeviceCredential] = {}
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
        found = self._accounts.get((username, realm))
        if found is not None or not self._devices:
            return found
        return self._device_account(username, realm)

    def _device_account(self, username: str, realm: str) -> Account | None:
        """A provisioned device's generated credentials as an account of the line it serves:
        its own HA1s, the user's AOR and device limit, and the user's SIP user name (the To
        of its REGISTER is the user's number: RFC 3261 10.3 step 4 holds). A line removed
        from the plan takes its devices' credentials with it."""
        cred = self._devices.get((username, realm))
        user = self._users.get(cred.aor) if cred is not None else None
        if cred is None or user is None:
            return None
        return Account(user.sip.username, realm, cred.ha1_md5, cred.ha1_sha256, cred.aor,
                       max_contacts=user.devices)

    def add_device_credentials(self, credentials: Iterable[DeviceCredential]) -> None:
        for cred in credentials:
            self._devices[(cred.username, cred.realm)] = cred

    def remove_device_credentials(self, credentials: Iterable[DeviceCredential]) -> None:
        for cred in credentials:
            self._devices.pop((cred.username, cred.realm), None)

    def set_device_credentials(self, credentials: Iterable[DeviceCredential]) -> None:
        """Every provisioned device's credentials, as stored (a reload from the database)."""
        self._devices = {(c.username, c.realm): c for c in credentials}

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

    async def start(self) -> None:
        plan = self.holder.plan
        log.info("dialplan loaded customers=%d users=%d", len(plan.customers), len(plan.users))

    async def stop(self) -> None:
        return None

    @property
    def plan(self) -> Plan:
        return self.holder.plan

    def reload(self) -> None:
        issues = self.holder.reload(self.path)
        if issues:
            for issue in issues:
                log.error("dialplan reload refused: %s", issue)
            log.error("the running dialplan stays in place")
        else:
            log.info("dialplan reloaded generation=%d", self.holder.generation)
