"""The test "browser" (aiortc + SIP over WebSocket) lives with the scenario engines, which
also play it (`kind: webrtc`); the tests import it from here."""

from scenarios.webrtc_client import BrowserCall, BrowserClient, Heard, ToneTrack, open_ws

__all__ = ["BrowserCall", "BrowserClient", "Heard", "ToneTrack", "open_ws"]
