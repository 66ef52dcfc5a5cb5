"""Scenario steps that go through the switch's admin API (issue 18) instead of SIP.

`- bruno: {settings: {dnd: true}}`: the phone's user logs in with its own SIP credentials
(`POST /api/v1/session`) and changes its call settings (`PUT /api/v1/me/settings`), as
the web portal does. The API is on the switch's HTTP port: the SIP port + 4.
"""

from __future__ import annotations

import json

from .engine import StepFailed


async def change_settings(host: str, sip_port: int, account: str, password: str,
                          body: str, timeout: float) -> None:
    import aiohttp

    base = f"http://{host}:{sip_port + 4}/api/v1"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        async with http.post(f"{base}/session",
                             json={"username": account, "password": password}) as resp:
            if resp.status != 200:
                raise StepFailed(f"the API refused {account}'s login ({resp.status})")
            token = (await resp.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with http.put(f"{base}/me/settings", json=json.loads(body),
                                headers=headers) as resp:
                if resp.status != 200:
                    error = (await resp.json(content_type=None) or {}).get("error", "")
                    raise StepFailed(f"the API refused the settings ({resp.status}: {error})")
        finally:
            async with http.delete(f"{base}/session", headers=headers):
                pass
