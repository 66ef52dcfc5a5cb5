"""A UDP relay between one SIP client and the switch that keeps what went through.

What a phone really sent (which digest algorithm it chose, which User-Agent it gave) is
read on the wire here, not from the switch's own account of it. The relay listens on a
free port; the client sends to it, the relay forwards to the switch from a second socket
and sends the switch's answers back to the last client address. The switch therefore sees
the relay as the client (its source address), which is what a NAT does too.
"""

from __future__ import annotations

import select
import socket
import threading


class UdpRelay:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((host, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((host, 0))
        self.port: int = self.front.getsockname()[1]
        self.to_switch: list[bytes] = []
        self.to_client: list[bytes] = []
        self._client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        socks = [self.front, self.back]
        while not self._stop.is_set():
            ready, _, _ = select.select(socks, [], [], 0.05)
            for s in ready:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    return
                if s is self.front:
                    self._client = addr
                    self.to_switch.append(data)
                    self.back.sendto(data, self.target)
                elif self._client is not None:
                    self.to_client.append(data)
                    self.front.sendto(data, self._client)

    def requests(self, method: str) -> list[str]:
        """The requests of `method` the client sent, as text."""
        out = []
        for raw in list(self.to_switch):
            text = raw.decode("utf-8", "replace")
            if text.startswith(method + " "):
                out.append(text)
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.front.close()
        self.back.close()


def header_values(message: str, name: str) -> list[str]:
    """Values of a header (case-insensitive name, no compact forms) in a SIP message text."""
    head = message.split("\r\n\r\n", 1)[0]
    prefix = name.lower() + ":"
    return [ln.split(":", 1)[1].strip() for ln in head.split("\r\n")[1:]
            if ln.lower().startswith(prefix)]


def digest_algorithm(value: str) -> str:
    """The algorithm of Digest credentials (MD5 when absent, RFC 7616 section 3.4)."""
    for part in value.split(","):
        name, _, val = part.strip().partition("=")
        if name.strip().lower().endswith("algorithm"):
            return val.strip().strip('"').upper()
    return "MD5"
