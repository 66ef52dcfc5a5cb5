"""RTP, RTCP and RFC 4733 packets: hand-written wire bytes, round trips, bad input."""

from __future__ import annotations

import pytest

from media import rtcp
from media.dtmf import DtmfReceiver, DtmfSender, DtmfSource, TelephoneEvent, parse_event
from media.rtp import RtpError, RtpPacket, parse_rtp, payload_offset, seq_diff, ts_diff
from media.stats import ReceptionStats

# V=2, M=1, PT=101, seq=0x1234, ts=0x0000a000, SSRC=0xdeadbeef, RFC 4733 '5', 800 units, E
DTMF_END = bytes.fromhex("80e512340000a000deadbeef058a0320")


def test_rtp_parse_known_bytes() -> None:
    p = parse_rtp(DTMF_END)
    assert (p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc) == (
        101,
        True,
        0x1234,
        0xA000,
        0xDEADBEEF,
    )
    assert parse_event(p.payload) == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert p.build() == DTMF_END


def test_rtp_csrc_extension_padding() -> None:
    pkt = RtpPacket(
        0, 7, 160, 1, b"\xff" * 4, csrcs=(9, 10), extension=(0xBEDE, b"\x01\x02\x03\x04")
    )
    data = pkt.build()
    assert parse_rtp(data) == pkt
    assert payload_offset(data) == 12 + 8 + 8
    padded = bytes([data[0] | 0x20]) + data[1:] + b"\x00\x00\x03"
    assert parse_rtp(padded).payload == b"\xff" * 4


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x80\x00\x00", "shorter"),
        (bytes.fromhex("40000001000000000000000a"), "version"),
        (bytes.fromhex("81000001000000000000000a"), "CSRC"),
        (bytes.fromhex("80c8000100000000000000ff"), "RTCP"),
        (bytes.fromhex("a0000001000000000000000a00"), "padding"),
    ],
)
def test_rtp_rejects_bad_datagrams(data: bytes, why: str) -> None:
    with pytest.raises(RtpError, match=why):
        parse_rtp(data)


def test_sequence_and_timestamp_wrap() -> None:
    assert seq_diff(2, 65534) == 4 and seq_diff(65534, 2) == -4
    assert ts_diff(100, 0xFFFFFF00) == 356


def test_reception_stats_loss_wrap_and_jitter() -> None:
    st = ReceptionStats()
    seqs = [65530 + i for i in range(6)] + [0, 1, 3, 4]  # wraps; 2 is lost
    for i, s in enumerate(seqs):
        st.update(7, s & 0xFFFF, 160 * i, 160, 0.02 * i)
    assert st.extended_max == 0x10000 + 4
    assert st.expected == 11 and st.lost == 1
    assert st.jitter_ms < 0.01
    assert st.interval_fraction()[0] == (1 << 8) // 11


def test_reception_stats_jitter_rfc3550_a8() -> None:
    st = ReceptionStats()
    for i in range(200):  # arrivals alternate 0 / +10 ms around the nominal time
        st.update(1, i, 160 * i, 160, 0.02 * i + (0.01 if i % 2 else 0.0))
    assert 75 < st.jitter < 85  # converges to |D| = 80 timestamp units (10 ms)
    assert 9.0 < st.jitter_ms < 10.5


def test_ssrc_change_restarts_counts() -> None:
    st = ReceptionStats()
    for i in range(5):
        st.update(1, 100 + i, 0, 160, 0.0)
    st.update(2, 9000, 0, 160, 0.1)
    assert st.ssrc_changes == 1 and st.expected == 1 and st.lost == 0


def test_rtcp_sr_sdes_bye_round_trip_and_bytes() -> None:
    block = rtcp.ReportBlock(0x11223344, 25, 3, 70000, 80, 0xAABBCCDD, 65536)
    sr = rtcp.RtcpReport(0xCAFEBABE, rtcp.SenderInfo(0x0123456789ABCDEF, 1000, 50, 8000), (block,))
    data = (
        rtcp.build_report(sr)
        + rtcp.build_sdes(0xCAFEBABE, "wte@host")
        + rtcp.build_bye((0xCAFEBABE,))
    )
    assert data[:4] == bytes.fromhex("81c8000c")  # RC=1, PT=200, length 12 words
    assert data[28:32] == bytes.fromhex("11223344") and data[32:36] == bytes.fromhex("19000003")
    parsed = rtcp.parse_rtcp(data)
    assert parsed == [sr, rtcp.RtcpSdes(0xCAFEBABE, "wte@host"), rtcp.RtcpBye((0xCAFEBABE,))]


def test_rtcp_rr_negative_loss_and_rtt() -> None:
    rr = rtcp.RtcpReport(5, None, (rtcp.ReportBlock(6, 0, -2, 10, 0, 0, 0),))
    assert rtcp.parse_rtcp(rtcp.build_report(rr)) == [rr]
    sent = 1_700_000_000.25
    lsr = rtcp.ntp_middle(rtcp.ntp_time(sent))
    blk = rtcp.ReportBlock(6, 0, 0, 0, 0, lsr, int(0.5 * 65536))
    assert abs(rtcp.rtt_seconds(blk, sent + 0.55) - 0.05) < 0.001


def test_rtcp_rejects_non_report_first() -> None:
    with pytest.raises(rtcp.RtcpError):
        rtcp.parse_rtcp(rtcp.build_sdes(1, "x"))
    with pytest.raises(rtcp.RtcpError):
        rtcp.parse_rtcp(rtcp.build_report(rtcp.RtcpReport(1, None, ()))[:-1] + b"\x00" * 8)


def test_rfc4733_sender_packets() -> None:
    s = DtmfSender()
    s.queue("5", duration_ms=100, gap_ms=40)
    out = [s.tick(1000 + 160 * i) for i in range(10)]
    events = [e for e in out if e is not None]
    assert len(events) == 5 + 2  # five growing packets, the end one three times in all
    assert all(e.timestamp == 1000 for e in events)  # the event's start timestamp
    assert [e.marker for e in events] == [True] + [False] * 6
    assert [e.payload.hex() for e in events] == [
        "050a00a0",
        "050a0140",
        "050a01e0",
        "050a0280",
        "058a0320",
        "058a0320",
        "058a0320",
    ]
    assert out[7:9] == [None, None] and not s.busy


def test_rfc4733_receiver_once_each_with_duration() -> None:
    r = DtmfReceiver()
    s = DtmfSender()
    s.queue("1#", duration_ms=120)
    got = []
    now = 0.0
    for i in range(40):
        ev = s.tick(160 * i)
        if ev is not None:
            got += r.receive(ev.timestamp, ev.payload, now)
            got += r.receive(ev.timestamp, ev.payload, now)  # duplicated by the network
        now += 0.02
    assert [(d.digit, d.duration_ms, d.source) for d in got] == [
        ("1", 120, DtmfSource.RFC4733),
        ("#", 120, DtmfSource.RFC4733),
    ]


def test_rfc4733_lost_end_packets() -> None:
    r = DtmfReceiver(end_timeout=0.5)
    start = TelephoneEvent(3, False, 10, 160).build()
    assert r.receive(0, start, 0.0) == []
    assert r.check_timeout(0.3) is None
    d = r.check_timeout(0.6)
    assert d is not None and d.digit == "3"
    # a next event whose predecessor's end was lost delivers both
    r.receive(1000, TelephoneEvent(4, False, 10, 320).build(), 1.0)
    out = r.receive(5000, TelephoneEvent(6, True, 10, 800).build(), 1.5)
    assert [x.digit for x in out] == ["4", "6"]
    assert r.receive(5000, TelephoneEvent(6, True, 10, 800).build(), 1.52) == []
