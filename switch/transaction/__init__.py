"""RFC 3261 section 17 transactions, sans-IO (see `layer.TransactionLayer`)."""

from .base import Action, Input
from .client import InviteClientState, NonInviteClientState
from .events import (
    CancelReceived,
    ClientKey,
    DuplicateTransaction,
    Peer,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    StrayResponse,
    TransactionError,
    TransactionTerminated,
    TransactionTimeout,
    TransitionError,
    Transmit,
    TransportFailed,
    TxnEvent,
    TxnKey,
    UnknownTransaction,
)
from .layer import TransactionLayer, reply_peer, server_key, stamp_received
from .requests import build_ack, build_cancel
from .server import InviteServerState, NonInviteServerState
from .timers import Timer, TimerConfig

__all__ = [
    "Action", "CancelReceived", "ClientKey", "DuplicateTransaction", "Input",
    "InviteClientState", "InviteServerState", "NonInviteClientState", "NonInviteServerState",
    "Peer", "RequestReceived", "ResponseReceived", "ServerKey", "StrayResponse", "Timer",
    "TimerConfig", "TransactionError", "TransactionLayer", "TransactionTerminated",
    "TransactionTimeout", "TransitionError", "Transmit", "TransportFailed", "TxnEvent",
    "TxnKey", "UnknownTransaction", "build_ack", "build_cancel", "reply_peer", "server_key",
    "stamp_received",
]
