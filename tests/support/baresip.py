"""Headless baresip (the Debian package) and sipsak as independent SIP clients in tests.

baresip runs with a configuration directory made in a temporary folder: its microphone is a
WAV file (the `aufile` source), its loudspeaker the `aubridge` null device, and the
`sndfile` filter records what it hears (`dump-...-dec.wav`). It is driven through the
`ctrl_tcp` module: JSON commands in netstrings on a TCP port chosen free by the test,
answered with responses and events (`REGISTER_OK`, `CALL_ESTABLISHED`, `CALL_CLOSED`...).

Outside CI a missing binary skips the test with the reason; with CI=true it is a failure
(`.ci/run` installs both with apt-get).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import struct
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from scenarios.switchproc import free_port_pair

MODULES = Path("/usr/lib/baresip/modules")


def require_binary(name: str) -> str:
    """The path of `name`; skip (or fail under CI=true) when it is not installed."""
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} is not installed (apt-get install {name})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; .ci/run installs it, CI must have it")
    pytest.skip(f"{reason}; with CI=true this is a failure")


def write_tone(path: Path, freq: float, seconds: float = 20.0, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of a sine tone (aufile wants S16LE at the codec's rate)."""
    n = int(seconds * rate)
    frames = struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * freq * i / rate))
                                     for i in range(n)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def _free_tcp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Baresip:
    """One headless baresip process with one account."""

    def __init__(self, workdir: Path, *, user: str, password: str, registrar: str,
                 tone_wav: Path, host: str = "127.0.0.1") -> None:
        self.binary = require_binary("baresip")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recordings = self.dir / "rec"
        self.recordings.mkdir(exist_ok=True)
        self.sip_port = free_port_pair(host)  # UDP/TCP on P, TLS on P+1
        self.ctrl_port = _free_tcp_port(host)
        modules = ["g711.so", "aufile.so", "aubridge.so", "sndfile.so"]
        lines = [
            "poll_method epoll",
            f"sip_listen {host}:{self.sip_port}",
            "call_local_timeout 120",
            f"audio_source aufile,{tone_wav}",
            "audio_player aubridge,null",
            "audio_alert aubridge,null",
            "audio_srate 8000",
            "audio_channels 1",
            f"module_path {MODULES}",
            *(f"module {m}" for m in modules),
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {host}:{self.ctrl_port}",
            f"snd_path {self.recordings}",
        ]
        (self.dir / "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{registrar}>;auth_pass={password};regint=300;"
            "audio_codecs=PCMU,PCMA;answermode=manual\n", encoding="utf-8")
        self.log_path = self.dir / "baresip.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([self.binary, "-f", str(self.dir)], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.events: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self._buf = b""
        try:
            self._sock = self._connect(host)
        except RuntimeError:
            self.proc.kill()
            self.proc.wait(5)
            self._log.close()
            raise

    def _connect(self, host: str, timeout: float = 10.0) -> socket.socket:
        end = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection((host, self.ctrl_port), timeout=1.0)
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"baresip did not start: {self.log_text()}") from None
                time.sleep(0.1)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def poll(self, timeout: float = 0.1) -> None:
        """Read what baresip sent: netstrings `LEN:JSON,`."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return
        self._buf += data
        while b":" in self._buf:
            head, _, rest = self._buf.partition(b":")
            size = int(head)
            if len(rest) < size + 1:
                return
            msg = json.loads(rest[:size])
            self._buf = rest[size + 1:]
            (self.events if msg.get("event") else self.responses).append(msg)

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any] | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for ev in self.events:
                if ev.get("type") == kind:
                    return ev
            self.poll(0.1)
        return next((ev for ev in self.events if ev.get("type") == kind), None)

    def heard(self) -> Path | None:
        """The recording of what baresip received (the decoder side) in the last call."""
        files = sorted(self.recordings.glob("dump-*-dec.wav"))
        return files[-1] if files else None

    def stop(self) -> None:
        try:
            self.command("quit")
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._sock.close()
        self._log.close()


def sipsak_register(*, user: str, password: str, host: str, port: int, expires: int = 300,
                    contact: str | None = None, timeout: float = 20.0
                    ) -> subprocess.CompletedProcess[str]:
    """`sipsak -U`: register `user` (a usrloc test) and return the finished process.

    -i: no extra Via (usrloc mode adds its own), -u: the digest user name (sipsak would
    append an '@' otherwise), -r: the port (the URI port is mangled in usrloc mode).
    """
    binary = require_binary("sipsak")
    args = [binary, "-U", "-i", "-s", f"sip:{user}@{host}", "-r", str(port), "-u", user,
            "-a", password, "-x", str(expires), "-vvv"]
    if contact is not None:
        args += ["-C", contact]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
