"""The identifier source (issue 21): CSPRNG digits drawn a block at a time, never reused,
fresh in a forked child."""

from __future__ import annotations

import os
import re

from switch.sip import new_branch, new_call_id, new_tag
from switch.sip.randomness import RandomHex, random_hex


def test_digits_are_hex_of_the_asked_length_and_never_repeat() -> None:
    source = RandomHex()
    seen = {source.take(16) for _ in range(5000)}  # several refills of the block
    assert len(seen) == 5000
    assert all(re.fullmatch("[0-9a-f]{16}", s) for s in seen)
    assert len(source.take(20_000)) == 20_000  # larger than a block


def test_identifiers_keep_their_shapes() -> None:
    assert re.fullmatch("[0-9a-f]{12}", new_tag())
    assert re.fullmatch("z9hG4bK[0-9a-f]{16}", new_branch())
    assert re.fullmatch("[0-9a-f]{24}@example.com", new_call_id("example.com"))
    assert len({new_tag() for _ in range(10_000)}) == 10_000


def test_a_forked_child_does_not_repeat_the_parents_digits() -> None:
    random_hex(1)  # the block is drawn in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, random_hex(32).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != random_hex(32)
