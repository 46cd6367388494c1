"""RFC 4733 telephone-events: packet builder and the per-leg receiver."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.media.dtmf import (
    DIGITS,
    TelephoneEventDetector,
    TelephoneEventPacket,
    TelephoneEventReport,
    telephone_event_packets,
)

Rtp = tuple[bytes, int, bool, int]  # payload, timestamp, marker, seq


def started(digit: str) -> TelephoneEventReport:
    return TelephoneEventReport(digit, False, 0)


def ended(digit: str, duration_samples: int) -> TelephoneEventReport:
    return TelephoneEventReport(digit, True, duration_samples)


def press(digit: str, duration_ms: int, timestamp: int, first_seq: int) -> list[Rtp]:
    """One key press as RTP packets (payload, timestamp, marker, seq)."""
    return [
        (p.payload, timestamp, p.marker, (first_seq + i) & 0xFFFF)
        for i, p in enumerate(telephone_event_packets(digit, duration_ms))
    ]


def feed_all(detector: TelephoneEventDetector, packets: list[Rtp]) -> list[TelephoneEventReport]:
    return [r for packet in packets for r in detector.feed(*packet)]


def test_event_codes_map_to_keypad_characters() -> None:
    # RFC 4733 §3.2: 0-9, then 10 '*', 11 '#', 12-15 'A'-'D'.
    assert DIGITS == "0123456789*#ABCD"
    for event, digit in enumerate(DIGITS):
        payload = bytes([event, 0x80 | 10, 0, 160])
        assert TelephoneEventDetector().feed(payload, 0, True, 0) == [
            started(digit),
            ended(digit, 160),
        ]


def test_packets_of_a_100_ms_press() -> None:
    # Four packets with growing duration, then the end packet three times (§2.5.1.4).
    assert telephone_event_packets("5", 100) == [
        TelephoneEventPacket(bytes([5, 10, 0, 160]), True, 160),
        TelephoneEventPacket(bytes([5, 10, 1, 64]), False, 320),
        TelephoneEventPacket(bytes([5, 10, 1, 224]), False, 480),
        TelephoneEventPacket(bytes([5, 10, 2, 128]), False, 640),
        TelephoneEventPacket(bytes([5, 0x8A, 3, 32]), False, 800),
        TelephoneEventPacket(bytes([5, 0x8A, 3, 32]), False, 960),
        TelephoneEventPacket(bytes([5, 0x8A, 3, 32]), False, 1120),
    ]


def test_press_shorter_than_a_packet_is_three_end_packets_first_with_marker() -> None:
    packets = telephone_event_packets("#", 10, volume=3)
    assert [(p.payload, p.marker) for p in packets] == [
        (bytes([11, 0x83, 0, 80]), True),
        (bytes([11, 0x83, 0, 80]), False),
        (bytes([11, 0x83, 0, 80]), False),
    ]


def test_duration_grows_with_packet_interval() -> None:
    packets = telephone_event_packets("1", 95, packet_ms=30)
    durations = [int.from_bytes(p.payload[2:], "big") for p in packets]
    assert durations == [240, 480, 720, 760, 760, 760]
    assert [p.send_offset_samples for p in packets] == [240, 480, 720, 960, 1200, 1440]


def test_digit_is_reported_at_the_first_packet_and_once_at_the_end() -> None:
    detector = TelephoneEventDetector()
    reports = [detector.feed(*packet) for packet in press("7", 100, 1000, 50)]
    assert reports == [[started("7")], [], [], [], [ended("7", 800)], [], []]


def test_lost_start_packets_still_detect_the_digit() -> None:
    packets = press("9", 100, 1000, 50)
    assert feed_all(TelephoneEventDetector(), packets[2:]) == [started("9"), ended("9", 800)]


def test_only_an_end_packet_arrives() -> None:
    packets = press("A", 100, 1000, 50)
    assert feed_all(TelephoneEventDetector(), packets[-1:]) == [started("A"), ended("A", 800)]


def test_lost_end_packets_are_closed_by_the_next_event() -> None:
    first = press("1", 100, 1000, 50)[:4]  # no end packet arrives
    second = press("2", 60, 3000, 57)
    detector = TelephoneEventDetector()
    assert feed_all(detector, first) == [started("1")]
    assert detector.feed(*second[0]) == [ended("1", 640), started("2")]


def test_flush_closes_an_open_event_once() -> None:
    detector = TelephoneEventDetector()
    feed_all(detector, press("3", 100, 1000, 0)[:2])
    assert detector.flush() == [ended("3", 320)]
    assert detector.flush() == []


def test_same_digit_twice_is_two_events() -> None:
    packets = press("5", 60, 1000, 0) + press("5", 60, 2600, 6)
    reports = feed_all(TelephoneEventDetector(), packets)
    assert reports == [started("5"), ended("5", 480), started("5"), ended("5", 480)]


def test_late_packet_of_an_earlier_event_is_ignored() -> None:
    first = press("1", 60, 1000, 0)
    second = press("2", 60, 2600, 6)
    detector = TelephoneEventDetector()
    feed_all(detector, first[:2] + second[:1])
    assert detector.feed(*first[-1]) == []
    assert feed_all(detector, second[1:]) == [ended("2", 480)]


def test_timestamp_reused_after_end_with_marker_is_a_new_event() -> None:
    # Some senders keep the timestamp when no audio went out between two presses.
    first = press("4", 60, 1000, 0)
    second = press("4", 60, 1000, len(first))
    reports = feed_all(TelephoneEventDetector(), first + second)
    assert reports == [started("4"), ended("4", 480), started("4"), ended("4", 480)]


def test_retransmitted_first_packet_is_not_a_new_event() -> None:
    packets = press("6", 60, 1000, 0)
    reports = feed_all(TelephoneEventDetector(), [*packets, packets[0]])
    assert reports == [started("6"), ended("6", 480)]


def test_timestamp_wraps_around() -> None:
    packets = press("8", 60, 0xFFFFFF00, 0) + press("0", 60, 0x100, 6)
    reports = feed_all(TelephoneEventDetector(), packets)
    assert reports == [started("8"), ended("8", 480), started("0"), ended("0", 480)]


def test_flash_and_other_events_are_ignored() -> None:
    detector = TelephoneEventDetector()
    assert detector.feed(bytes([16, 0x8A, 3, 32]), 500, True, 0) == []  # hook flash
    assert detector.feed(bytes([255, 0, 0, 0]), 600, True, 1) == []
    assert feed_all(detector, press("C", 60, 1000, 2)) == [started("C"), ended("C", 480)]


def test_short_payload_is_ignored() -> None:
    assert TelephoneEventDetector().feed(b"\x05\x8a\x03", 0, True, 0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"digit": "x", "duration_ms": 100},
            "telephone_event_packets: digit must be one of 0123456789*#ABCD, got 'x'",
        ),
        (
            {"digit": "12", "duration_ms": 100},
            "telephone_event_packets: digit must be one of 0123456789*#ABCD, got '12'",
        ),
        (
            {"digit": "1", "duration_ms": 0},
            "telephone_event_packets: duration_ms must be positive, got 0",
        ),
        (
            {"digit": "1", "duration_ms": 8192},
            "telephone_event_packets: duration_ms must be at most 8191 "
            "(16-bit duration at 8000 Hz), got 8192",
        ),
        (
            {"digit": "1", "duration_ms": 100, "packet_ms": 0},
            "telephone_event_packets: packet_ms must be positive, got 0",
        ),
        (
            {"digit": "1", "duration_ms": 100, "volume": 64},
            "telephone_event_packets: volume must be 0..63 (-dBm0), got 64",
        ),
    ],
)
def test_bad_packet_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        telephone_event_packets(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_bad_feed_arguments() -> None:
    detector = TelephoneEventDetector()
    with pytest.raises(ValueError) as info:
        detector.feed(b"\x00\x00\x00\x00", -1, False, 0)
    assert str(info.value) == "feed: timestamp must be 0..4294967295, got -1"
    with pytest.raises(ValueError) as info:
        detector.feed(b"\x00\x00\x00\x00", 0, False, 65536)
    assert str(info.value) == "feed: seq must be 0..65535, got 65536"


presses = st.lists(
    st.tuples(
        st.sampled_from(DIGITS),
        st.integers(1, 400),  # duration_ms
        st.integers(20, 400),  # gap after the press, ms
    ),
    min_size=1,
    max_size=6,
)


@given(presses, st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF), st.data())
def test_every_press_reported_once_despite_loss_and_duplicates(
    keys: list[tuple[str, int, int]], base_ts: int, base_seq: int, data: st.DataObject
) -> None:
    detector = TelephoneEventDetector()
    reports: list[TelephoneEventReport] = []
    expected: list[TelephoneEventReport] = []
    ts, seq = base_ts, base_seq
    for digit, duration_ms, gap_ms in keys:
        packets = press(digit, duration_ms, ts, seq)
        # Lose any packets but one end packet, duplicate some: the press is still seen once.
        kept = [p for p in packets[:-1] if data.draw(st.booleans())] + packets[-1:]
        arrived = [p for p in kept for _ in range(data.draw(st.integers(1, 2)))]
        reports += feed_all(detector, arrived)
        expected += [started(digit), ended(digit, duration_ms * 8)]
        ts = (ts + (duration_ms + gap_ms) * 8) & 0xFFFFFFFF
        seq += len(packets)
    assert reports == expected


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=8), st.integers(0, 0xFFFFFFFF), st.booleans(), st.integers(0, 0xFFFF)
        ),
        max_size=30,
    )
)
def test_arbitrary_packets_never_crash(packets: list[Rtp]) -> None:
    detector = TelephoneEventDetector()
    open_events = 0
    for packet in feed_all(detector, packets) + detector.flush():
        assert packet.digit in DIGITS
        open_events += -1 if packet.ended else 1
        assert open_events in (0, 1)  # every end closes the one open event
    assert open_events == 0
