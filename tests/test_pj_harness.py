"""The pjsua2 harness itself: a phone a test has shut down never takes a later phone with it.

pjsua2's `Account.shutdown()` frees the account's slot but keeps its id, and the object's
destructor shuts it down again. When a failed test's traceback kept its phones alive until a
later module had reused their slots, the destructor deleted the later module's accounts and
every call they placed failed with PJ_EINVALIDOP (seen in CI: two conference tests after a
cluster failure).
"""

from __future__ import annotations

import gc
from typing import Any

from tests.support.pjphone import make_phone

UNUSED_PORT = 9  # nothing is sent: the phones do not register


def test_a_retired_phone_never_deletes_the_phone_that_took_its_slot(pj_lib: Any) -> None:
    old = make_phone(pj_lib, transport="UDP", user="retired", host="127.0.0.1",
                     port=UNUSED_PORT)
    slot = old.account.getId()
    old.shutdown()
    new = make_phone(pj_lib, transport="UDP", user="successor", host="127.0.0.1",
                     port=UNUSED_PORT)
    try:
        assert new.account.getId() == slot  # the case at hand: the slot was reused
        del old
        gc.collect()
        assert new.account.isValid()
    finally:
        new.shutdown()
