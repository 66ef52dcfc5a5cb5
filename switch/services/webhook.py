"""POST a JSON event to an operator's or a customer's webhook (emergency alerts, minute
pool alerts). Blocking: callers run it on a worker thread. A failed POST is logged with
what it was for, never raised: an alert must not break the call that raised it."""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
from collections.abc import Mapping

log = logging.getLogger("switch.webhook")


def post_json(url: str, event: Mapping[str, object], what: str = "webhook") -> bool:
    """True when the receiver answered; False (logged) when it could not be reached."""
    req = urllib.request.Request(url, data=json.dumps(event).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with contextlib.closing(urllib.request.urlopen(req, timeout=5)):
            return True
    except OSError as exc:
        log.error("%s failed: %s", what, exc)
        return False
