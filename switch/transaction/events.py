"""Addresses, transaction keys, events and errors of the transaction layer (RFC 3261 section 17).

Events are immutable and pulled by the caller with `TransactionLayer.next_event()` (house
habit 3): the layer never calls back into the runtime or the TU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from switch.sip import Request, Response

RELIABLE_TRANSPORTS = frozenset(("TCP", "TLS", "WS", "WSS", "SCTP"))


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from or goes to (the transport 5-tuple as the runtime sees it)."""

    transport: str  # "UDP" | "TCP" | "TLS" | "WS" | "WSS"
    host: str
    port: int
    conn_id: int | None = None  # stream connection to reuse, when known

    @property
    def reliable(self) -> bool:
        """RFC 3261 17.1.1.2 / 17.1.2.2: retransmission timers run only on unreliable transports."""
        return self.transport != "UDP"


class ClientKey(NamedTuple):
    """A client transaction's identity (RFC 3261 17.1.3): top Via branch and CSeq method.

    A CANCEL has the same branch as the INVITE it cancels (9.1), so the method tells them apart.
    """

    branch: str
    method: str


class ServerKey(NamedTuple):
    """A server transaction's identity (RFC 3261 17.2.3).

    For RFC 3261 requests: the top Via branch, its sent-by and the method (ACK counts as
    INVITE). For RFC 2543 requests (no z9hG4bK cookie) `branch` is "" and `sent_by` holds the
    old identity: Request-URI, From tag, Call-ID, CSeq number, top Via and To tag.
    """

    branch: str
    sent_by: str
    method: str


TxnKey = ClientKey | ServerKey


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send `data` to `dest`. Retransmissions carry the very same bytes object."""

    data: bytes
    dest: Peer
    key: TxnKey | None = None  # the transaction sending it, for `transport_error()`


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU. `key` is None for an ACK that matches no transaction
    (the ACK for a 2xx, RFC 3261 13.3.1.4 / 17.2.3): the TU must not answer it."""

    key: ServerKey | None
    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    key: ClientKey
    response: Response


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched the INVITE server transaction `invite_key` (RFC 3261 9.2)."""

    invite_key: ServerKey
    cancel_key: ServerKey
    request: Request


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no client transaction (e.g. a 2xx retransmission, 13.2.2.4)."""

    response: Response
    peer: Peer | None = None


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B or F fired (the TU acts as on a 408, RFC 3261 8.1.3.1), or Timer H fired on
    an INVITE server transaction (no ACK came for a non-2xx final response, 17.2.1)."""

    key: TxnKey


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """A transport error was reported for this transaction (RFC 3261 17.1.4, 17.2.4)."""

    key: TxnKey


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    key: TxnKey


TxnEvent = (
    Transmit
    | RequestReceived
    | ResponseReceived
    | CancelReceived
    | StrayResponse
    | TransactionTimeout
    | TransportFailed
    | TransactionTerminated
)


class TransactionError(Exception):
    """A misuse of the transaction layer by its caller (our mistake, not the peer's)."""


class TransitionError(TransactionError):
    """The transition table has no entry for (state, input)."""

    def __init__(self, machine: str, key: TxnKey, state: object, inp: object) -> None:
        super().__init__(f"{machine} {key}: no transition from {state} on {inp}")
        self.machine = machine
        self.key = key
        self.state = state
        self.input = inp


class UnknownTransaction(TransactionError):
    """No live transaction has this key (it may have terminated)."""


class DuplicateTransaction(TransactionError):
    """A client transaction with this key already exists (reused branch)."""
