"""Voicemail (issue 13): leaving a message (`deposit`), the mailbox menu (`mailbox`), PINs
(`pin`), and what the applications know of a mailbox and how they change it (`store`).

Pure: no I/O, no clock. The adapter is `switch/services/voicemail.py`; the storage
`switch/storage/voicemail.py`; the exhausted-call policy `switch/b2bua/voicemail_policy.py`.
"""

from .deposit import DepositApp, greeting
from .mailbox import MailboxMenu
from .pin import demo_pin, hash_pin, valid_pin, verify_pin
from .store import Greeting, MailboxActions, MailboxSnapshot, PinFailures, StoredMessage

__all__ = ["DepositApp", "Greeting", "MailboxActions", "MailboxMenu", "MailboxSnapshot",
           "PinFailures", "StoredMessage", "demo_pin", "greeting", "hash_pin", "valid_pin",
           "verify_pin"]
