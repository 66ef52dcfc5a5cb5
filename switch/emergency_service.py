"""Emergency calls on the wire: location by reference (RFC 6442), notification, call-back.

The dialplan decides that a call is an emergency call (every dialed form, barring never
applies); this adapter adds what the PSAP needs: the caller's civic location as a PIDF-LO
body next to the SDP in a multipart/mixed body, referenced by a `Geolocation: <cid:...>`
header (RFC 6442 section 4.1), `Priority: emergency` (RFC 3261 20.26), and an alert for the
customer's administrators (a structured log event and, when configured, a webhook).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from dialplan import RoutingDecision, Site, User
from emergency.callback import CallbackWindow, EmergencyCall
from emergency.locations import DeclaredLocation, DeclaredLocations
from emergency.pidf import CONTENT_TYPE as PIDF_TYPE
from emergency.pidf import CivicLocation, build_pidf_lo
from switch.b2bua.assembly import EmergencyParts as EmergencyLeg
from switch.services.webhook import post_json
from switch.sip.body import BodyPart, build_multipart
from switch.storage.locations import SqlLocationRepository

log = logging.getLogger("switch.emergency")



def location_of(site: Site) -> CivicLocation:
    a = site.address
    return CivicLocation(country=a.country, city=a.city, street=a.street, number=a.number,
                         postal_code=a.postal_code, extra=a.extra, name=site.name)


class EmergencyService:
    """Emergency legs, alerts and call-backs; self-declared locations in the shared
    database (the engine belongs to the composition root, which disposes of it)."""

    def __init__(self, engine: AsyncEngine | None, *, callback_window: float = 1800.0,
                 webhook_url: str | None = None, domain: str = "wte.invalid") -> None:
        self.callbacks = CallbackWindow(callback_window)
        self.locations = DeclaredLocations()
        self.repo = SqlLocationRepository(engine) if engine is not None else None
        self.webhook_url = webhook_url
        self.domain = domain
        self._tasks: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        if self.repo is not None:
            self.locations.load(await self.repo.load_all())

    async def stop(self) -> None:
        return None  # a webhook in flight finishes on its thread (5 s timeout)

    async def declare(self, location: DeclaredLocation) -> None:
        """Store a self-declared location durably, then use it for the next calls."""
        if self.repo is not None:
            await self.repo.save(location)
        self.locations.set(location)

    @staticmethod
    def is_nomadic(caller: User | None, source: str) -> bool:
        """A device outside every declared network of its site (issue 7)."""
        if caller is None or not caller.site.networks:
            return False
        try:
            addr = ipaddress.ip_address(source)
        except ValueError:
            return True
        return not any(addr in net for net in caller.site.networks)

    def location_for(self, site: Site, caller: User | None,
                     nomadic: bool) -> tuple[CivicLocation, str]:
        """The location to send and a description for the alert."""
        if not nomadic:
            return location_of(site), str(site.address)
        declared = self.locations.get(f"{caller.customer.id}:{caller.full_number}") if caller else None
        if declared is None:
            return (CivicLocation(country=site.address.country, city="", street="", number="",
                                  postal_code="", extra="location unknown: nomadic device",
                                  method="Unknown"), "unknown (nomadic device)")
        loc = CivicLocation(country=declared.country, city=declared.city, street=declared.street,
                            number=declared.number, postal_code=declared.postal_code,
                            extra=declared.extra, method="Manual")
        return loc, f"self-declared: {declared}"

    def leg(self, decision: RoutingDecision, caller: User | None, number: str | None,
            sdp: bytes, nomadic: bool = False) -> EmergencyLeg:
        """Body and headers of the INVITE to the emergency route."""
        site = decision.target if isinstance(decision.target, Site) else (
            caller.site if caller else None)
        if site is None:
            return EmergencyLeg("application/sdp", sdp, (("Priority", "emergency"),))
        entity = f"sip:{number or 'unknown'}@{site.customer.sip_domain}"
        device = f"urn:wte:line:{caller.full_number if caller else 'unauthenticated'}"
        location, _ = self.location_for(site, caller, nomadic)
        pidf = build_pidf_lo(entity, location, device)
        cid = f"{secrets.token_hex(8)}@{site.customer.sip_domain}"
        parts = [BodyPart((("Content-Type", "application/sdp"),), sdp)] if sdp else []
        parts.append(BodyPart((("Content-Type", PIDF_TYPE), ("Content-ID", f"<{cid}>"),
                               ("Content-Disposition", "by-reference;handling=optional")), pidf))
        content_type, body = build_multipart(parts, "wte-" + secrets.token_hex(8))
        headers = (("Geolocation", f"<cid:{cid}>"), ("Geolocation-Routing", "no"),
                   ("Priority", "emergency"))
        return EmergencyLeg(content_type, body, headers)

    def started(self, decision: RoutingDecision, caller: User | None, number: str | None,
                authenticated: bool, nomadic: bool = False) -> None:
        """Alert the customer's administrators and open the call-back window."""
        site = decision.target if isinstance(decision.target, Site) else None
        where = self.location_for(site, caller, nomadic)[1] if site else "unknown"
        event = {
            "event": "emergency_call",
            "emergency_number": decision.number,
            "caller": caller.full_number if caller else None,
            "caller_number": number,
            "authenticated": authenticated,
            "site": site.code if site else None,
            "customer": site.customer.id if site else None,
            "location": where,
            "nomadic": nomadic,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        log.warning("emergency call %s", json.dumps(event, sort_keys=True))
        if caller is not None and site is not None and decision.number:
            self.callbacks.record(EmergencyCall(caller.full_number, site.code, site.customer.id,
                                                decision.number, time.time()))
        # the customer's own hook first (its admins), else the operator's
        url = (site.customer.emergency_webhook if site else None) or self.webhook_url
        if url:
            task = asyncio.ensure_future(asyncio.to_thread(self._post, url, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _post(url: str, event: Mapping[str, object]) -> None:
        post_json(url, event, "emergency webhook")
