"""Dialog layer (L2, pure): dialogs (RFC 3261 section 12), SDP (RFC 8866), offer/answer
(RFC 3264), session timers (RFC 4028) and reliable provisional responses (RFC 3262)."""

from .dialog import Dialog, DialogError, DialogEvent, DialogId, DialogState
from .offeranswer import (
    MediaCapabilities,
    OAEvent,
    OAState,
    OfferAnswer,
    OfferAnswerError,
    SdpKind,
    SdpVersioner,
    StreamParams,
    build_answer,
    build_offer,
    bump_version,
    is_hold,
    negotiated_streams,
    rewrite_connection,
)
from .prack import RAck, ReliableReceiver, ReliableSender, build_prack, is_reliable
from .sdp import (
    Connection,
    Crypto,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
    serialize,
)
from .session_timer import Negotiated, Refresher, SessionTimer, uac_negotiate, uas_negotiate

__all__ = [
    "Connection", "Crypto", "Dialog", "DialogError", "DialogEvent", "DialogId", "DialogState",
    "Direction", "MediaCapabilities", "MediaDescription", "Negotiated", "OAEvent", "OAState",
    "OfferAnswer", "OfferAnswerError", "Origin", "RAck", "Refresher", "ReliableReceiver",
    "ReliableSender", "RtpMap", "SdpError", "SdpKind", "SdpVersioner", "SessionDescription",
    "SessionTimer", "StreamParams", "build_answer", "build_offer", "build_prack", "bump_version",
    "is_hold", "is_reliable", "negotiated_streams", "parse_sdp", "rewrite_connection",
    "serialize", "uac_negotiate", "uas_negotiate",
]
