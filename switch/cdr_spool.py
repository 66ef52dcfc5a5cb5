"""The durable local queue of call records: an append-only JSON-lines file, fsynced.

While the database is away, switch.cdr_writer appends every record event here before it
forgets it, and writes the file to the database once it answers again (and at start: a
switch killed during an outage replays what it spooled). Each line is one event:
`{"kind": "open"|"answer"|"close", "record": {...CallRecord fields...}}`. Writes to the
database are upserts by record id, so replaying a line twice is harmless; the file is
truncated only after every line in it has been written.

A line torn by a crash in the middle of a write (the last one) is skipped and logged; the
lines before it are intact because each append ends with an fsync.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
from collections.abc import Generator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from rating.cdr import CallRecord

log = logging.getLogger("switch.cdr")

SPOOL_FILE = "cdr-spool.jsonl"
_FIELDS = {f.name for f in dataclasses.fields(CallRecord)}

Event = tuple[str, CallRecord]


def encode(kind: str, record: CallRecord) -> str:
    return json.dumps({"kind": kind, "record": dataclasses.asdict(record)},
                      separators=(",", ":"), allow_nan=False) + "\n"


def decode(line: str) -> Event:
    data: Any = json.loads(line)
    fields = {k: v for k, v in data["record"].items() if k in _FIELDS}
    return str(data["kind"]), CallRecord(**fields)


class CdrSpool:
    """Blocking file operations; the writer runs them on a worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0

    def append(self, events: Sequence[Event]) -> None:
        """Append and fsync: once this returns, the events survive kill -9 and power loss."""
        data = "".join(encode(kind, record) for kind, record in events).encode("utf-8")
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            self._sync_dir()

    def chunks(self, size: int) -> Generator[list[Event], None, None]:
        """The spooled events in order, `size` at a time (lazily: a long outage's spool is
        never read into memory at once)."""
        try:
            fh = self.path.open(encoding="utf-8")
        except FileNotFoundError:
            return
        with fh:
            number = 0
            while True:
                lines = list(islice(fh, size))
                if not lines:
                    return
                chunk: list[Event] = []
                for line in lines:
                    number += 1
                    if not line.strip():
                        continue
                    try:
                        chunk.append(decode(line))
                    except (ValueError, KeyError, TypeError):
                        log.error("call record spool %s line %d unreadable (torn by a crash?):"
                                  " skipped", self.path, number)
                if chunk:
                    yield chunk

    def clear(self) -> None:
        """Empty the spool (every line is in the database)."""
        if not self.path.exists():
            return
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sync_dir(self) -> None:
        # a new file's directory entry must be durable too
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
