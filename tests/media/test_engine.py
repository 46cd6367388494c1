"""MediaEngine over real loopback sockets: test sockets play the phones.

Nothing sleeps: every wait is a recv timeout on a phone's socket or a select on
events_fd, and ordering comes from the engine's single reader per socket (a packet that
arrives after another on the same socket is processed after it). Commands are queued,
not waited for: before a phone sends what a command must already have taken effect for
(a bridge, a new remote), the test calls engine.sync().
"""

import os
import select
import socket
import time
from collections.abc import Iterator

import pytest

from switch.media import (
    LegStatistics,
    MediaEngine,
    MediaError,
    RtpTimedOut,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from tests.media.phones import fields, rtp

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
PORTS = (7100, 7299)
WAIT_S = 5.0
COUNTERS = ("received", "sent", "dropped_invalid", "dropped_stranger", "relayed",
            "rtcp_received")


class Phone:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(WAIT_S)
        self.port: int = self.sock.getsockname()[1]

    def send(self, engine: MediaEngine, leg: int, packet: bytes) -> None:
        self.sock.sendto(packet, (HOST, engine.leg_port(leg)))

    def recv(self) -> tuple[bytes, int]:
        data, (_, port) = self.sock.recvfrom(4096)
        return data, port

    def pending(self) -> bool:
        return bool(select.select([self.sock], [], [], 0)[0])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    media = MediaEngine(workers=2, port_range=PORTS, rtp_timeout_s=60.0)
    media.start()
    yield media
    media.stop()


@pytest.fixture
def phones() -> Iterator[list[Phone]]:
    made = [Phone() for _ in range(4)]
    yield made
    for phone in made:
        phone.close()


def call(engine: MediaEngine, a: Phone, b: Phone, **remote_b: int) -> tuple[int, int]:
    leg1, leg2 = engine.open_leg(), engine.open_leg()
    engine.set_remote(leg1, HOST, a.port)
    engine.set_remote(leg2, HOST, b.port, **remote_b)
    engine.bridge(leg1, leg2)
    engine.sync()  # the bridge is in place before any phone talks
    return leg1, leg2


def test_relay_both_ways_with_own_ssrc_and_continuous_numbering(engine, phones) -> None:
    a, b = phones[:2]
    leg1, leg2 = call(engine, a, b)
    for k in range(3):
        a.send(engine, leg1, rtp(100 + k, 8000 + 160 * k, 0xA, bytes([k]) * 160))
    got = [b.recv() for _ in range(3)]
    assert {port for _, port in got} == {engine.leg_port(leg2)}
    parsed = [fields(data) for data, _ in got]
    ssrcs = {p[4] for p in parsed}
    assert len(ssrcs) == 1 and 0xA not in ssrcs
    assert [p[2] for p in parsed] == [100, 101, 102]
    assert [p[3] - parsed[0][3] for p in parsed] == [0, 160, 320]
    assert [p[5] for p in parsed] == [bytes([k]) * 160 for k in range(3)]

    b.send(engine, leg2, rtp(7, 70, 0xB))
    data, port = a.recv()
    assert port == engine.leg_port(leg1)
    _, _, seq, _, ssrc, _ = fields(data)
    assert seq == 7 and ssrc not in (0xB, *ssrcs)
    stats = engine.leg_stats(leg1)
    assert {name: stats[name] for name in COUNTERS} == {
        "received": 3, "sent": 1, "dropped_invalid": 0, "dropped_stranger": 0,
        "relayed": 3, "rtcp_received": 0,
    }


def test_loss_jitter_and_mos_in_stats(engine, phones) -> None:
    a, b = phones[:2]
    leg1, _ = call(engine, a, b)
    seqs = [*range(10, 20), *range(22, 30)]  # 20 and 21 lost
    for seq in seqs:
        a.send(engine, leg1, rtp(seq, 160 * seq, 0xA))
    for _ in seqs:
        b.recv()
    stats = engine.leg_stats(leg1)
    assert stats["lost"] == 2
    assert stats["jitter_ms"] >= 0
    assert 1.0 <= stats["mos"] < 4.5


def test_latching_sends_to_the_source_not_the_signalled_port(engine, phones) -> None:
    a, b, wrong = phones[:3]
    leg1, leg2 = engine.open_leg(), engine.open_leg()
    engine.set_remote(leg1, HOST, wrong.port)  # what SDP said, before NAT
    engine.set_remote(leg2, HOST, b.port)
    engine.bridge(leg1, leg2)
    engine.sync()
    a.send(engine, leg1, rtp(1, 160, 0xA))
    b.recv()
    b.send(engine, leg2, rtp(1, 160, 0xB, b"reply"))
    data, _ = a.recv()
    assert fields(data)[5] == b"reply"
    assert not wrong.pending()


def test_strangers_are_dropped_and_counted(engine, phones) -> None:
    a, b, stranger = phones[:3]
    leg1, _ = call(engine, a, b)
    a.send(engine, leg1, rtp(1, 160, 0xA, b"first"))
    stranger.send(engine, leg1, rtp(1, 160, 0xA, b"stranger, same SSRC"))
    stranger.send(engine, leg1, rtp(9, 900, 0x5, b"stranger, new SSRC, source not silent"))
    a.send(engine, leg1, rtp(2, 320, 0xA, b"second"))
    assert [fields(b.recv()[0])[5] for _ in range(2)] == [b"first", b"second"]
    stats = engine.leg_stats(leg1)
    assert (stats["received"], stats["dropped_stranger"], stats["relayed"]) == (2, 2, 2)



def wait_for_timeout(media: MediaEngine, leg: int) -> None:
    """Until the engine reports the leg's source silent (an event, with a deadline)."""
    while True:
        assert select.select([media.events_fd], [], [], WAIT_S)[0]
        if any(isinstance(e, RtpTimedOut) and e.leg == leg for e in media.drain_events()):
            return


def test_relatch_to_a_new_ssrc_after_the_configured_silence(phones) -> None:
    # The RTP timeout (0.25 s) is posted after more silence than relatch needs (0.2 s).
    media = MediaEngine(workers=1, port_range=PORTS, rtp_timeout_s=0.25, relatch_silence_s=0.2)
    media.start()
    try:
        a, b, moved = phones[:3]
        leg1, leg2 = call(media, a, b)
        a.send(media, leg1, rtp(1, 160, 0xA, b"before"))
        b.recv()
        wait_for_timeout(media, leg1)
        moved.send(media, leg1, rtp(2, 320, 0xA, b"same SSRC elsewhere: a stranger"))
        moved.send(media, leg1, rtp(50, 5000, 0xC, b"new SSRC after silence"))
        assert fields(b.recv()[0])[5] == b"new SSRC after silence"
        b.send(media, leg2, rtp(1, 160, 0xB, b"reply"))
        assert fields(moved.recv()[0])[5] == b"reply"
        a.send(media, leg1, rtp(3, 480, 0xA, b"old source, now a stranger"))
        moved.send(media, leg1, rtp(51, 5160, 0xC, b"still latched"))
        assert fields(b.recv()[0])[5] == b"still latched"
        assert not a.pending()
        stats = media.leg_stats(leg1)
        assert (stats["received"], stats["dropped_stranger"], stats["relayed"]) == (3, 2, 3)
    finally:
        media.stop()


def test_strict_latching_never_relatches_until_set_remote(phones) -> None:
    media = MediaEngine(workers=1, port_range=PORTS, rtp_timeout_s=0.25, relatch_silence_s=None)
    media.start()
    try:
        a, b, other = phones[:3]
        leg1, _ = call(media, a, b)
        a.send(media, leg1, rtp(1, 160, 0xA, b"first"))
        b.recv()
        wait_for_timeout(media, leg1)
        other.send(media, leg1, rtp(50, 5000, 0xC, b"new SSRC after silence: ignored"))
        a.send(media, leg1, rtp(2, 320, 0xA, b"latched source"))
        assert fields(b.recv()[0])[5] == b"latched source"
        stats = media.leg_stats(leg1)
        assert (stats["received"], stats["dropped_stranger"], stats["relayed"]) == (2, 1, 2)
        # A new offer is the way to move: the next packet latches again.
        media.set_remote(leg1, HOST, other.port)
        media.sync()
        other.send(media, leg1, rtp(51, 5160, 0xC, b"after set_remote"))
        assert fields(b.recv()[0])[5] == b"after set_remote"
    finally:
        media.stop()


def test_relatch_silence_is_checked() -> None:
    for value in (-0.5, "2", True, 1e9):
        with pytest.raises(ValueError) as caught:
            MediaEngine(workers=1, port_range=PORTS, relatch_silence_s=value)
        assert str(caught.value) == (
            f"relatch_silence_s must be a non-negative number of seconds or None, got {value!r}"
        )
    MediaEngine(workers=1, port_range=PORTS, relatch_silence_s=0)  # any new SSRC at once


INVALID = {
    "empty": b"",
    "short": b"\x80\x00\x00\x01",
    "version 1": b"\x40" + rtp(1, 1, 1)[1:],
    "version 0": b"\x00" + rtp(1, 1, 1)[1:],
    "csrc past the end": b"\x8f" + rtp(1, 1, 1, b"\x00" * 20)[1:],
    "extension header past the end": b"\x90" + rtp(1, 1, 1, b"\x00\x01")[1:],
    "extension data past the end": b"\x90" + rtp(1, 1, 1, b"\xbe\xde\x00\x09" + b"\x00" * 8)[1:],
    "padding count zero": b"\xa0" + rtp(1, 1, 1, b"\x01\x02\x00")[1:],
    "padding past the header": b"\xa0" + rtp(1, 1, 1, b"\x01\x02\x09")[1:],
    "longer than a receive slot": rtp(1, 1, 1, b"\x00" * 3000),
}


def test_invalid_datagrams_are_dropped_and_counted_and_relay_goes_on(engine, phones) -> None:
    a, b = phones[:2]
    leg1, _ = call(engine, a, b)
    for datagram in INVALID.values():
        a.send(engine, leg1, datagram)
    # Valid edge cases: CSRCs, an extension and padding are stepped over, not dropped.
    a.send(engine, leg1, b"\x92" + rtp(5, 1, 1, b"\x00" * 8 + b"\xbe\xde\x00\x01abcdok")[1:])
    a.send(engine, leg1, b"\xa0" + rtp(6, 1, 1, b"ok\x00\x02")[1:])
    assert fields(b.recv()[0])[2] == 5
    assert fields(b.recv()[0])[2] == 6
    stats = engine.leg_stats(leg1)
    assert stats["dropped_invalid"] == len(INVALID)
    assert stats["received"] == stats["relayed"] == 2


def test_rebridge_continues_sequence_with_a_marker(engine, phones) -> None:
    a, b, c = phones[:3]
    leg1, leg2 = call(engine, a, b)
    leg3 = engine.open_leg()
    engine.set_remote(leg3, HOST, c.port)
    for k in range(2):
        b.send(engine, leg2, rtp(500 + k, 40000 + 160 * k, 0xB))
    before = [fields(a.recv()[0]) for _ in range(2)]

    engine.bridge(leg1, leg3)  # queue -> agent: the customer now talks to leg3
    engine.sync()
    for k in range(2):
        c.send(engine, leg3, rtp(9000 + k, 7 + 160 * k, 0xC))
    after = [fields(a.recv()[0]) for _ in range(2)]
    assert [p[2] for p in after] == [before[-1][2] + 1, before[-1][2] + 2]
    assert [p[1] for p in after] == [True, False]
    assert {p[4] for p in before + after} == {before[0][4]}
    assert after[0][3] - before[-1][3] > 0  # time moved on
    assert after[1][3] - after[0][3] == 160
    # leg2 is no longer bridged: what it receives is counted, not relayed.
    b.send(engine, leg2, rtp(502, 40320, 0xB))
    c.send(engine, leg3, rtp(9002, 327, 0xC, b"from c"))
    assert fields(a.recv()[0])[5] == b"from c"


def test_pcmu_pcma_transcoding_matches_g711(engine, phones) -> None:
    a, b = phones[:2]
    leg1, leg2 = call(engine, a, b, payload_type=8)
    codes = bytes(range(256))
    a.send(engine, leg1, rtp(1, 0, 0xA, codes, pt=0))
    pt, _, _, _, _, payload = fields(b.recv()[0])
    assert (pt, payload) == (8, alaw_encode(ulaw_decode(codes)))
    b.send(engine, leg2, rtp(1, 0, 0xB, codes, pt=8))
    pt, _, _, _, _, payload = fields(a.recv()[0])
    assert (pt, payload) == (0, ulaw_encode(alaw_decode(codes)))


def test_telephone_events_take_the_far_legs_payload_type(engine, phones) -> None:
    a, b, c, d = phones
    leg1, _ = call(engine, a, b, dtmf_payload_type=96)
    event = b"\x05\x0a\x00\xa0"  # RFC 4733: digit 5, volume 10, duration 160
    a.send(engine, leg1, rtp(1, 0, 0xA, event, pt=101))
    assert fields(b.recv()[0])[0] == 96

    leg3, _ = call(engine, c, d, dtmf_payload_type=None)
    c.send(engine, leg3, rtp(1, 0, 0xC, event, pt=101))
    c.send(engine, leg3, rtp(2, 160, 0xC, b"audio"))
    assert fields(d.recv()[0])[5] == b"audio"


def test_rtp_timeout_is_posted_once_on_events_fd(phones) -> None:
    media = MediaEngine(workers=1, port_range=PORTS, rtp_timeout_s=0.1, stats_interval_s=0.3)
    media.start()
    try:
        silent, talking = media.open_leg(), media.open_leg()
        media.open_leg()  # no remote: never times out
        media.set_remote(silent, HOST, phones[0].port)
        seen = []
        while sum(isinstance(e, LegStatistics) and e.leg == silent for e in seen) < 2:
            assert select.select([media.events_fd], [], [], WAIT_S)[0]
            seen += media.drain_events()
        timeouts = [e for e in seen if isinstance(e, RtpTimedOut)]
        assert [e.leg for e in timeouts] == [silent]
        assert 0.1 <= timeouts[0].silent_s < WAIT_S
        assert talking not in {e.leg for e in timeouts}
        stats = [e for e in seen if isinstance(e, LegStatistics) and e.leg == silent]
        assert stats[-1] == LegStatistics(silent, **media.leg_stats(silent))
    finally:
        media.stop()


def test_close_leg_frees_its_ports_and_exhaustion_is_an_error() -> None:
    media = MediaEngine(workers=1, port_range=(7300, 7303))
    media.start()
    try:
        first, second = media.open_leg(), media.open_leg()
        assert {media.leg_port(first), media.leg_port(second)} == {7300, 7302}
        with pytest.raises(MediaError, match=r"^no free RTP port in 7300-7303$"):
            media.open_leg()
        media.close_leg(first)
        with pytest.raises(MediaError, match=r"^no such leg: 1$"):
            media.leg_port(first)  # forgotten at once
        media.sync()  # its worker has closed the sockets: the port is back in the pool
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 7300))  # the RTP and RTCP ports really are closed
        probe.close()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 7301))
        probe.close()
        assert media.leg_port(media.open_leg()) == 7300
    finally:
        media.stop()


def test_rtcp_port_is_bound_unless_muxed(engine) -> None:
    plain, muxed = engine.open_leg(), engine.open_leg(rtcp_mux=True)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(OSError):
        probe.bind((HOST, engine.leg_port(plain) + 1))
    probe.bind((HOST, engine.leg_port(muxed) + 1))
    probe.close()


def test_rtcp_is_counted_not_relayed(engine, phones) -> None:
    a, b = phones[:2]
    leg1, leg2 = engine.open_leg(rtcp_mux=True), engine.open_leg()
    engine.set_remote(leg1, HOST, a.port)
    engine.set_remote(leg2, HOST, b.port)
    engine.bridge(leg1, leg2)
    engine.sync()
    receiver_report = b"\x80\xc9\x00\x01\x00\x00\x00\x0a"  # RFC 3550 §6.4.2, no blocks
    a.send(engine, leg1, receiver_report)
    a.sock.sendto(receiver_report, (HOST, engine.leg_port(leg2) + 1))
    a.send(engine, leg1, rtp(1, 0, 0xA, b"audio"))
    assert fields(b.recv()[0])[5] == b"audio"
    assert engine.leg_stats(leg1)["rtcp_received"] == 1
    assert engine.leg_stats(leg1)["received"] == 1


def test_groups_share_a_worker_and_bridge_moves_a_leg(engine, phones) -> None:
    a, b = phones[:2]
    leg1, leg2 = engine.open_leg(), engine.open_leg()
    assert engine.leg_worker(leg1) != engine.leg_worker(leg2)  # least loaded first
    grouped = [engine.open_leg(group="call-7") for _ in range(3)]
    assert len({engine.leg_worker(leg) for leg in grouped}) == 1
    engine.set_remote(leg1, HOST, a.port)
    engine.set_remote(leg2, HOST, b.port)
    engine.bridge(leg1, leg2)
    assert engine.leg_worker(leg1) == engine.leg_worker(leg2)  # decided at once
    engine.sync()
    a.send(engine, leg1, rtp(1, 0, 0xA, b"moved"))
    assert fields(b.recv()[0])[5] == b"moved"


def test_commands_before_start_apply_directly(phones) -> None:
    media = MediaEngine(workers=1, port_range=PORTS)
    a, b = phones[:2]
    leg1, leg2 = call(media, a, b)
    media.start()
    try:
        a.send(media, leg1, rtp(1, 0, 0xA, b"queued"))
        assert fields(b.recv()[0])[5] == b"queued"
    finally:
        media.stop()
    with pytest.raises(MediaError, match=r"^no such leg: 2$"):
        media.leg_stats(leg2)  # stop closed every leg


def test_start_stop_repeatedly_leaks_no_threads_or_fds(phones) -> None:
    def counts(threads: int | None = None) -> tuple[int, int]:
        # A joined thread leaves /proc/self/task a moment after pthread_join returns
        # (the kernel wakes the joiner before it reaps the thread): wait for that.
        deadline = time.monotonic() + WAIT_S
        while (len(os.listdir("/proc/self/task")) != threads
               and threads is not None and time.monotonic() < deadline):
            os.sched_yield()
        return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))

    before = counts()
    a, b = phones[:2]
    for _ in range(5):
        media = MediaEngine(workers=3, port_range=PORTS)
        for _ in range(3):
            media.start()
            assert counts()[0] == before[0] + 3 + 1  # workers and the recorder writer
            leg1, _ = call(media, a, b)
            a.send(media, leg1, rtp(1, 0, 0xA))
            b.recv()
            media.stop()
            assert counts(before[0])[0] == before[0]
        del media
    assert counts(before[0]) == before


def test_bad_arguments_have_exact_messages(engine) -> None:
    leg = engine.open_leg()
    cases = [
        (lambda: MediaEngine(workers=0), "workers must be an integer 1-1024, got 0"),
        (lambda: MediaEngine(port_range=(5, 4)),
         "port_range must be (low, high) with 1 <= low <= high <= 65535, got (5, 4)"),
        (lambda: MediaEngine(port_range=(7101, 7102)),
         "port_range 7101-7102 holds no even port with port+1 in range"),
        (lambda: MediaEngine(bind_host="::1"), "bind_host must be an IPv4 address, got '::1'"),
        (lambda: MediaEngine(rtp_timeout_s=0),
         "rtp_timeout_s must be a positive number of seconds, got 0"),
        (lambda: engine.set_remote(leg, "example.com", 5004),
         "host must be an IPv4 address, got 'example.com'"),
        (lambda: engine.set_remote(leg, HOST, 0), "port must be an integer 1-65535, got 0"),
        (lambda: engine.set_remote(leg, HOST, 5004, payload_type=128),
         "payload_type must be an integer 0-127, got 128"),
        (lambda: engine.bridge(leg, leg), f"cannot bridge leg {leg} to itself"),
        (lambda: engine.open_leg(group=7), "group must be a str or None, got 7"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError) as caught:
            make()
        assert str(caught.value) == message
    with pytest.raises(MediaError, match=r"^media engine already started$"):
        engine.start()
    with pytest.raises(MediaError, match=r"^no such leg: 999$"):
        engine.bridge(leg, 999)


def test_wakeup_window_still_relays_every_packet(phones) -> None:
    media = MediaEngine(workers=1, port_range=PORTS, wakeup_window_us=2000)
    media.start()
    try:
        a, b = phones[:2]
        leg1, _ = call(media, a, b)
        for k in range(20):
            a.send(media, leg1, rtp(k, 160 * k, 0xA, bytes([k]) * 160))
        got = [fields(b.recv()[0]) for _ in range(20)]
        assert [p[5] for p in got] == [bytes([k]) * 160 for k in range(20)]
        assert media.leg_stats(leg1)["relayed"] == 20
    finally:
        media.stop()


def test_wakeup_window_range_is_checked() -> None:
    with pytest.raises(ValueError, match=r"^wakeup_window_us must be an integer 0-10000, "
                                         r"got 20000$"):
        MediaEngine(workers=1, port_range=PORTS, wakeup_window_us=20000)
