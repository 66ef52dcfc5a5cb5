"""WebRTC calls through the switch (issue 23).

- `sdp`: pure: tell a WebRTC description (ICE, DTLS fingerprint, UDP/TLS/RTP/SAVPF) from a
  plain RTP one, and build the plain descriptions the rest of the switch sees.
- `credentials`: pure: short-lived SIP passwords for browsers (HMAC, like the TURN REST
  scheme), accepted over WS/WSS only.
- `gateway`: aiortc: one RTCPeerConnection per WebRTC leg (full ICE, DTLS-SRTP, Opus or
  PCMU) bridged to a plain RTP/G.711 socket on the media host.
- `edge`: the WebSocket edge that rewrites SDP bodies of SIP messages to and from browsers,
  so the call service, the relay and the applications only ever see plain RTP phones.
- `http`: `POST /api/v1/webrtc/credentials` and the softphone page (`/softphone`).
"""
