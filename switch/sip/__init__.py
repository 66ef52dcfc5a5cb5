"""Pure SIP message layer (RFC 3261 sections 7, 19, 20, 25): stdlib only."""

from .address import ContactStar, NameAddr, parse_name_addr
from .body import BodyPart, build_multipart, parse_multipart
from .builder import make_response, new_branch, new_call_id, new_tag
from .cseq import CSeq, parse_cseq
from .errors import SipError, SipParseError
from .headers import Headers, canonical_name
from .message import Request, Response, SipMessage
from .parser import StreamFramer, parse_message
from .status import reason_for
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri, uri_user
from .via import Via, parse_via

__all__ = [
    "AbsoluteUri", "BodyPart", "CSeq", "ContactStar", "Headers", "NameAddr", "Request", "Response",
    "SipError", "SipMessage", "SipParseError", "SipUri", "StreamFramer", "TelUri", "Uri",
    "Via", "build_multipart", "canonical_name", "make_response", "new_branch", "new_call_id", "new_tag",
    "parse_cseq", "parse_message", "parse_multipart", "parse_name_addr", "parse_uri", "parse_via", "reason_for",
    "uri_user",
]
