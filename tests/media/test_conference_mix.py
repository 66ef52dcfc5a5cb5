"""The room mixer (issue 16): each participant hears the others, never themselves; muted
participants are heard by nobody; cues reach everyone or one participant."""

from __future__ import annotations

import numpy as np

from media.conference import FRAME, JOIN_CUE, RoomFeed, RoomMixer


def const(v: int) -> np.ndarray:
    return np.full(FRAME, v, np.int16)


def test_each_hears_the_sum_of_the_others() -> None:
    m: RoomMixer[str] = RoomMixer()
    for k, v in (("a", 100), ("b", 20), ("c", 3)):
        m.add(k)
        m.feed(k, const(v))
    out = m.tick()
    assert {k: int(f[0]) for k, f in out.items()} == {"a": 23, "b": 103, "c": 120}
    # nothing fed in the next tick: silence, not the old frames again
    assert all(int(abs(f).max()) == 0 for f in m.tick().values())


def test_a_muted_participant_is_heard_by_nobody_but_still_hears() -> None:
    m: RoomMixer[str] = RoomMixer()
    for k, v in (("a", 100), ("b", 20)):
        m.add(k)
        m.feed(k, const(v))
    m.mute("a", True)
    out = m.tick()
    assert int(out["b"][0]) == 0 and int(out["a"][0]) == 20


def test_saturates_instead_of_wrapping() -> None:
    m: RoomMixer[int] = RoomMixer()
    for k in range(3):
        m.add(k)
        m.feed(k, const(30000))
    assert int(m.tick()[0][0]) == 32767


def test_cues_reach_everyone_or_one() -> None:
    m: RoomMixer[str] = RoomMixer()
    m.add("a")
    m.add("b")
    m.play_to_all(JOIN_CUE)
    out = m.tick()
    assert np.array_equal(out["a"], JOIN_CUE[:FRAME]) and np.array_equal(out["b"], out["a"])
    frames = -(-len(JOIN_CUE) // FRAME)
    for _ in range(frames - 1):
        m.tick()
    assert all(int(abs(f).max()) == 0 for f in m.tick().values())  # the cue is over
    m.play_to("a", const(7))
    out = m.tick()
    assert int(out["a"][0]) == 7 and int(out["b"][0]) == 0


def test_a_gap_or_a_wrong_length_is_silence() -> None:
    m: RoomMixer[str] = RoomMixer()
    m.add("a")
    m.add("b")
    m.feed("a", np.ones(80, np.int16))
    m.feed("b", None)
    assert all(int(abs(f).max()) == 0 for f in m.tick().values())


def test_the_feed_keeps_a_bounded_backlog() -> None:
    feed = RoomFeed(depth=2)
    for v in (1, 2, 3):
        feed.push(const(v))
    assert [int(feed.read(FRAME)[0]) for _ in range(3)] == [2, 3, 0]
