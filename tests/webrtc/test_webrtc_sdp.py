"""The pure WebRTC SDP module: detection, plain descriptions, hold restamping."""

from __future__ import annotations

import pytest

from switch.dialog.offeranswer import SdpVersioner
from switch.dialog.sdp import Direction, parse_sdp
from switch.webrtc.sdp import (
    answering_setup,
    direction_of,
    is_webrtc,
    origin_version,
    plain_answer,
    plain_offer,
    plain_peer,
    restamp,
    setup_of,
)

# the shape of a browser's offer (RFC 8829 5.2.1): BUNDLE, ICE, DTLS, rtcp-mux, Opus first
BROWSER_OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host generation 0\r\n"
    "a=ice-ufrag:Ab12\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:"
    "BC:DE:F0:12:34:56:78:9A:BC:DE:F0\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\n"
    "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n"
)
PLAIN_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)


def test_a_browser_offer_is_webrtc_and_a_plain_one_is_not() -> None:
    assert is_webrtc(BROWSER_OFFER.encode())
    assert not is_webrtc(PLAIN_OFFER.encode())
    assert not is_webrtc(b"")
    assert not is_webrtc(b"fingerprint ice-ufrag but not SDP")


@pytest.mark.parametrize("drop", ["a=fingerprint", "a=ice-ufrag"])
def test_without_ice_or_dtls_it_is_not_webrtc(drop: str) -> None:
    text = "".join(ln + "\r\n" for ln in BROWSER_OFFER.split("\r\n")
                   if ln and not ln.startswith(drop))
    assert not is_webrtc(text.encode())


def test_sdes_srtp_is_not_webrtc() -> None:
    sdes = PLAIN_OFFER.replace("RTP/AVP", "RTP/SAVP") + "a=fingerprint:sha-256 00\r\n"
    assert not is_webrtc(sdes.encode())  # no ICE, not a DTLS profile


def test_session_level_fingerprint_counts() -> None:
    lines = BROWSER_OFFER.split("\r\n")
    fp = next(ln for ln in lines if ln.startswith("a=fingerprint"))
    moved = [ln for ln in lines if ln != fp]
    moved.insert(moved.index("a=group:BUNDLE 0"), fp)
    assert is_webrtc("\r\n".join(moved).encode())


def test_plain_offer_and_the_peer_from_the_switchs_answer() -> None:
    ours = plain_offer(SdpVersioner(7), "192.0.2.1", 30000, Direction.SENDRECV)
    m = ours.media[0]
    assert (m.proto, m.port) == ("RTP/AVP", 30000)
    assert [ours.media[0].rtpmap[int(f)].encoding for f in m.formats] == [
        "PCMU", "PCMA", "telephone-event"]
    answer = parse_sdp(PLAIN_OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 8 101"))
    peer = plain_peer(ours, answer)
    assert peer is not None
    assert (peer.host, peer.port, peer.codec, peer.payload_type) == ("192.0.2.20", 40000,
                                                                     "PCMA", 8)
    assert peer.telephone_event == 101 and peer.sends


def test_hold_offer_from_the_browser_becomes_a_sendonly_plain_offer() -> None:
    held = BROWSER_OFFER.replace("a=sendrecv", "a=sendonly")
    assert direction_of(held) is Direction.SENDONLY
    ours = plain_offer(SdpVersioner(7), "192.0.2.1", 30000, direction_of(held))
    assert ours.direction_of(ours.media[0]) is Direction.SENDONLY


def test_plain_answer_to_the_switchs_offer() -> None:
    offer = parse_sdp(PLAIN_OFFER)
    ours = plain_answer(SdpVersioner(9), offer, "192.0.2.1", 30002)
    peer = plain_peer(ours, offer)
    assert peer is not None and peer.codec in ("PCMU", "PCMA") and peer.port == 40000
    assert ours.media[0].port == 30002


def test_a_switch_side_hold_stops_sending() -> None:
    ours = plain_offer(SdpVersioner(7), "192.0.2.1", 30000)
    answer = parse_sdp(PLAIN_OFFER.replace("a=sendrecv", "a=recvonly")
                       .replace("RTP/AVP 8 0 101", "RTP/AVP 0 101"))
    peer = plain_peer(ours, answer)
    assert peer is not None and peer.sends  # recvonly toward us: it still wants our audio
    answer = parse_sdp(PLAIN_OFFER.replace("a=sendrecv", "a=inactive"))
    peer = plain_peer(ours, answer)
    assert peer is not None and not peer.sends


def test_restamp_changes_direction_version_and_setup_only() -> None:
    text = restamp(BROWSER_OFFER, Direction.RECVONLY, version=5, setup="passive")
    assert "a=recvonly" in text and "a=sendrecv" not in text
    assert origin_version(text) == 5 and setup_of(text) == "passive"
    assert text.replace("a=recvonly", "a=sendrecv").replace(" 5 IN IP4", " 2 IN IP4") \
        .replace("a=setup:passive", "a=setup:actpass") == BROWSER_OFFER


def test_answering_setup_keeps_the_established_dtls_role() -> None:
    assert answering_setup("active") == "passive"
    assert answering_setup("passive") == "active"
    assert answering_setup(None) == "passive"
