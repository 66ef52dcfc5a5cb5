"""The lossy in-memory link (switch/transport/memory.py) is hostile and deterministic."""

from __future__ import annotations

import random

import pytest

from switch.transport.memory import MemoryLink

A = ("10.0.0.1", 5060)
B = ("10.0.0.2", 5060)


def run(link: MemoryLink, n: int = 500) -> list[bytes]:
    for i in range(n):
        link.send(str(i).encode(), A, B, i * 0.001)
    out: list[bytes] = []
    while (t := link.get_timer()) is not None:
        out.extend(d.data for d in link.deliver(t))
    return out


def test_same_seed_same_run() -> None:
    def make() -> MemoryLink:
        return MemoryLink(random.Random(42), loss=0.2, duplicate=0.1, jitter=0.05)
    assert run(make()) == run(make())


def test_loss_duplication_and_reordering_happen() -> None:
    link = MemoryLink(random.Random(1), loss=0.2, duplicate=0.2, delay=0.01, jitter=0.05)
    got = run(link)
    ints = [int(x) for x in got]
    assert link.stats["lost"] > 50 and link.stats["duplicated"] > 50
    assert len(set(ints)) < 500  # some lost
    assert len(ints) > len(set(ints))  # some duplicated
    assert ints != sorted(ints)  # some reordered
    assert link.stats["delivered"] == len(got)


def test_reliable_link_keeps_order_and_everything() -> None:
    link = MemoryLink(random.Random(3), delay=0.01, jitter=0.05, reliable=True)
    assert [int(x) for x in run(link)] == list(range(500))


def test_delay_and_cut() -> None:
    link = MemoryLink(random.Random(0), delay=0.25)
    link.cut(B, until=1.0)
    link.send(b"lost", A, B, 0.5)
    link.send(b"kept", A, B, 1.0)
    assert link.get_timer() == 1.25
    assert link.deliver(1.2) == []
    (d,) = link.deliver(1.25)
    assert (d.data, d.src, d.dst, d.arrival) == (b"kept", A, B, 1.25)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        MemoryLink(random.Random(0), loss=1.0)
    with pytest.raises(ValueError):
        MemoryLink(random.Random(0), loss=0.1, reliable=True)
