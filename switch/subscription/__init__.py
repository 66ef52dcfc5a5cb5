"""Pure core of SIP-specific event notification (RFC 6665) and its event packages.

- `state`: one subscription's state machine (pending, active, terminated), Expires
  negotiation (RFC 6665 4.2.1: 423 with Min-Expires) and the Subscription-State header;
- `bodies`: NOTIFY bodies for `dialog` (RFC 4235), `presence` (RFC 3863/3856) and
  `message-summary` (RFC 3842), built once per change and shared by the watchers;
- `table`: every subscription by id, by watched resource and by watcher/source (limits),
  with an expiry heap; time is passed in.

No I/O here: `switch.services.subscriptions` is the asyncio adapter.
"""

from .bodies import (
    DialogDirection,
    DialogInfo,
    DialogPhase,
    Party,
    PresenceSnapshot,
    dialog_info_body,
    message_summary_body,
    pidf_body,
)
from .state import (
    PACKAGES,
    SubEvent,
    Subscription,
    SubscriptionError,
    SubState,
    TerminationReason,
    negotiate_expires,
)
from .table import LimitExceeded, SubscriptionTable

__all__ = [
    "PACKAGES", "DialogDirection", "DialogInfo", "DialogPhase", "LimitExceeded", "Party",
    "PresenceSnapshot", "SubEvent", "SubState", "Subscription", "SubscriptionError",
    "SubscriptionTable", "TerminationReason", "dialog_info_body", "message_summary_body",
    "negotiate_expires", "pidf_body",
]
