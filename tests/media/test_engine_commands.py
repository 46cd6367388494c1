"""MediaEngine commands are queued, never waited for (issue 10).

A worker parked by the test hook (_stall_worker) shows it: every command still returns
at once with what the caller decides itself (leg ids, bound ports, errors), and takes
effect once the worker goes on. Churn over two workers while packets flow shows that
what queued commands point to lives long enough and is then freed: no crash, the ports
come back, file descriptors and heap return to where they were.

Nothing sleeps: waits are recv timeouts on test sockets, sync(), or the stall hook's own
handshake.
"""

import ctypes
import errno
import gc
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switch.media import CommandFailed, MediaEngine, MediaError
from switch.media.events import MediaEvent
from tests.media.phones import HOST, WAIT_S, Phone
from tests.media.phones import rtp as phones_rtp

pytestmark = pytest.mark.integration

PORTS = (7800, 7999)
CHURN_PORTS = (7800, 8799)  # room for closed legs whose sockets are still being closed


def rtp(seq: int, payload: bytes = b"\xff" * 160, ssrc: int = 0xA) -> bytes:
    return phones_rtp(seq, 160 * seq, ssrc, payload)


def port_is_bound(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((HOST, port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


def queued(engine: MediaEngine) -> list[int]:
    return [w["commands_queued"] for w in engine.stats()["workers"]]


def returns_at_once(engine: MediaEngine, worker: int, commands: Callable[[], None]) -> None:
    """Run ``commands`` while ``worker`` is parked; fail (instead of hanging) if any of
    them waits for it."""
    done = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            commands()
        except BaseException as error:
            failed.append(error)
        done.set()

    thread = threading.Thread(target=run)  # the only caller of the engine meanwhile
    thread.start()
    finished = done.wait(WAIT_S)
    if not finished:
        engine._resume_worker(worker)  # let the stuck command go, then fail
    thread.join()
    assert finished, "a command waited for the stalled worker"
    assert not failed, failed


def test_commands_return_while_the_worker_is_stalled_and_apply_after(phones) -> None:
    a, b, c = phones[:3]
    engine = MediaEngine(workers=1, port_range=PORTS, ssrc_seed=3)
    engine.start()
    try:
        engine._stall_worker(0)
        made: dict[str, int] = {}

        def commands() -> None:
            made["leg1"], made["leg2"] = engine.open_leg(), engine.open_leg()
            engine.set_remote(made["leg1"], HOST, a.port)
            engine.set_remote(made["leg2"], HOST, b.port)
            engine.bridge(made["leg1"], made["leg2"])
            made["tone"] = engine.open_leg()
            engine.set_remote(made["tone"], HOST, c.port)
            engine.play(made["tone"], [b"\x00\x01" * 480])
            engine.play_tone(made["tone"], "dial")  # replaces the prompt list
            engine.send_dtmf(made["leg1"], "12#")
            made["gone"] = engine.open_leg()
            made["gone_port"] = engine.leg_port(made["gone"])
            engine.close_leg(made["gone"])

        returns_at_once(engine, 0, commands)
        # Decided by the caller at once: ids, bound ports, the leg forgotten.
        assert [made[k] for k in ("leg1", "leg2", "tone", "gone")] == [1, 2, 3, 4]
        assert port_is_bound(engine.leg_port(made["leg1"]))
        assert port_is_bound(made["gone_port"])  # the worker has not closed it yet
        with pytest.raises(MediaError, match=r"^no such leg: 4$"):
            engine.leg_port(made["gone"])
        with pytest.raises(MediaError, match=r"^no such leg: 99$"):
            engine.bridge(made["leg1"], 99)  # validation is still synchronous
        with pytest.raises(ValueError, match=r"^unknown tone 'siren'"):
            engine.play_tone(made["tone"], "siren")
        # 4 open_leg, 3 set_remote, bridge, 2 plays, 2 media set-ups, DTMF, close (the
        # hold itself counts as applied once the worker is parked)
        assert queued(engine) == [14]
        assert engine.stats()["workers"][0]["legs"] == 3

        engine._resume_worker(0)
        tone = c.recv()  # the queued play_tone, applied: dial tone toward c
        assert tone[1] & 0x7F == 0 and len(tone) == 12 + 160
        engine.sync()
        assert queued(engine) == [0]
        assert not port_is_bound(made["gone_port"])  # closed by the worker, back in pool
        a.send(engine, made["leg1"], rtp(1, b"relayed"))
        assert b.recv()[12:] == b"relayed"
        assert a.recv()[1] & 0x7F == 101  # the queued RFC 4733 digits toward a
    finally:
        engine.stop()


def test_a_moved_leg_is_attached_only_after_its_old_worker_let_go(phones) -> None:
    a, b, c = phones[:3]
    engine = MediaEngine(workers=2, port_range=PORTS)
    engine.start()
    try:
        leg1, leg2 = engine.open_leg(), engine.open_leg()
        assert (engine.leg_worker(leg1), engine.leg_worker(leg2)) == (0, 1)
        clock = engine.open_leg(group="clock")  # worker 0 (least loaded: ties to the first)
        assert engine.leg_worker(clock) == 0
        engine.set_remote(leg1, HOST, a.port)
        engine.set_remote(leg2, HOST, b.port)
        engine.set_remote(clock, HOST, c.port)
        engine.sync()
        engine._stall_worker(1)  # leg2's worker cannot let go of it
        engine.bridge(leg1, leg2)  # detach on 1; attach and bridge on 0, gated
        assert engine.leg_worker(leg2) == 0  # decided at once
        engine.play_tone(clock, "dial")  # queued on worker 0 after the gated attach
        assert queued(engine) == [4, 1]  # 0: attach, bridge, media, tone (gated); 1: detach
        engine._resume_worker(1)
        c.recv()  # worker 0 got past the gate: the tone plays
        engine.sync()
        assert queued(engine) == [0, 0]
        a.send(engine, leg1, rtp(1, b"moved"))
        assert b.recv()[12:] == b"moved"
        b.send(engine, leg2, rtp(1, b"back", ssrc=0xB))
        assert a.recv()[12:] == b"back"
    finally:
        engine.stop()


def test_stop_resumes_a_stalled_worker_and_applies_every_queued_command() -> None:
    # Worker 0 waits behind a gated attach, worker 1 is parked: stop() still applies all.
    engine = MediaEngine(workers=2, port_range=PORTS)
    engine.start()
    leg1, leg2 = engine.open_leg(), engine.open_leg()
    ports = [engine.leg_port(leg1), engine.leg_port(leg2)]
    engine._stall_worker(1)
    engine.bridge(leg1, leg2)
    engine.close_leg(leg1)
    engine.close_leg(leg2)
    assert all(port_is_bound(port) for port in ports)
    engine.stop()  # resumes the parked worker, waits for every queue, joins
    assert not any(port_is_bound(port) for port in ports)
    workers = engine.stats()["workers"]
    assert [(w["legs"], w["commands_queued"]) for w in workers] == [(0, 0), (0, 0)]


def test_synchronous_mode_waits_for_every_command(phones) -> None:
    a, b = phones[:2]
    engine = MediaEngine(workers=2, port_range=PORTS)
    engine._synchronous = True  # the old behaviour, kept for bench/engine_commands.py
    engine.start()
    try:
        leg1, leg2 = engine.open_leg(), engine.open_leg()
        engine.set_remote(leg1, HOST, a.port)
        engine.set_remote(leg2, HOST, b.port)
        engine.bridge(leg1, leg2)
        assert queued(engine) == [0, 0]
        a.send(engine, leg1, rtp(1, b"no sync needed"))
        assert b.recv()[12:] == b"no sync needed"
    finally:
        engine.stop()


def test_stall_hook_refuses_a_stopped_engine() -> None:
    engine = MediaEngine(workers=1, port_range=PORTS)
    with pytest.raises(MediaError, match=r"^media engine is not running$"):
        engine._stall_worker(0)
    with pytest.raises(ValueError, match=r"^index must be an integer 0-0, got 1$"):
        engine._stall_worker(1)


def socket_fd(port: int) -> int:
    """This process's fd of the UDP socket bound to 127.0.0.1:``port``."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        inode = next(line.split()[9] for line in table if line.split()[1] == local)
    return next(int(fd) for fd in os.listdir("/proc/self/fd")
                if os.readlink(f"/proc/self/fd/{fd}") == f"socket:[{inode}]")


def test_what_only_the_worker_finds_out_comes_back_as_command_failed(tmp_path: Path) -> None:
    # While the worker is parked, the new leg's RTP socket is swapped for a regular
    # file (dup2 on its fd): epoll refuses that (EPERM), which only the worker sees when
    # it applies the attach, long after open_leg returned.
    engine = MediaEngine(workers=1, port_range=PORTS)
    engine.start()
    try:
        engine._stall_worker(0)
        leg = engine.open_leg(rtcp_mux=True)
        port = engine.leg_port(leg)
        with open(tmp_path / "not-a-socket", "wb") as regular:
            os.dup2(regular.fileno(), socket_fd(port))  # closes the socket: port is free
        engine._resume_worker(0)
        engine.sync()
        event: MediaEvent = CommandFailed(leg, "attach", os.strerror(errno.EPERM))
        assert engine.drain_events() == [event]
        with pytest.raises(AttributeError):
            event.leg = 8  # type: ignore[misc]  # frozen
        engine.close_leg(leg)  # the way out: closes what the fd is now
        engine.sync()
        assert not port_is_bound(port)
    finally:
        engine.stop()


# ---- churn: memory safety and balance under load -------------------------------------


def heap_in_use() -> int:
    """Bytes malloc has handed out and not had back (glibc mallinfo2, every arena)."""

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    gc.collect()  # Python garbage is not what this measures
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks) + int(info.hblkhd)


class Blaster:
    """A thread sending RTP to every even port of the engine's range, round and round,
    whether a leg has it or not (packets flow while legs open and close)."""

    def __init__(self, ports: tuple[int, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ports = range(ports[0], ports[1], 2)
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            for port in self.ports:
                seq += 1
                self.sock.sendto(rtp(seq & 0xFFFF), (HOST, port))
                self.sent += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def churn(engine: MediaEngine, sink: Phone, cycles: int, tmp_path: Path,
          live: int = 30) -> int:
    """Open, bridge (across workers: a move), play, record, mix, DTMF; close each call
    ``live`` cycles later. Returns the packets its legs received before closing."""
    received = 0
    calls: deque[tuple[int, int]] = deque()
    prompt = [b"\x00\x10" * 400]
    for k in range(cycles):
        leg1, leg2 = engine.open_leg(), engine.open_leg(rtcp_mux=k % 2 == 0)
        engine.set_remote(leg1, HOST, sink.port)
        engine.set_remote(leg2, HOST, sink.port, payload_type=8)
        engine.bridge(leg1, leg2)
        engine.play(leg1, prompt)
        engine.play_tone(leg2, "ringback")
        if k % 3 == 0:
            engine.play(leg2, prompt, loop=True)  # replaces the tone
            engine.send_dtmf(leg1, "0123456789*#" * 5, duration_ms=40)
        if k % 10 == 0:
            engine.record(leg1, leg2, tmp_path / f"churn-{k % 20}.wav")
        if k % 7 == 0:
            mix = engine.create_mix()
            engine.join_mix(mix, leg1)
            engine.join_mix(mix, leg2)
            engine.set_inband_dtmf(leg1, True)
        if k % 5 == 0:
            engine.stop_playing(leg1)
            engine.unbridge(leg2)
        calls.append((leg1, leg2))
        while len(calls) > live or (k == cycles - 1 and calls):
            for leg in calls.popleft():
                received += int(engine.leg_stats(leg)["received"])
                engine.close_leg(leg)  # stops its recording, takes it out of its mix
        if k % 50 == 0:
            engine.drain_events()
    return received


def test_churn_while_packets_flow_frees_everything(phones, tmp_path: Path) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    sink = phones[0]
    sink.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # drops, never blocks
    engine = MediaEngine(workers=2, port_range=CHURN_PORTS, rtcp_interval_s=0.05,
                         stats_interval_s=0.05)
    engine.start()
    blaster = Blaster(CHURN_PORTS)
    try:
        churn(engine, sink, 300, tmp_path)  # warm-up: pools, dicts, the recorder thread
        engine.sync()
        engine.drain_events()
        gc.collect()  # engines of earlier tests, gone now: their fds closed first
        fds_before, heap_before = fds(), heap_in_use()
        received = sum(churn(engine, sink, 1000, tmp_path) for _ in range(3))
        assert received > 0  # packets did meet live legs
        engine.sync()
        engine.drain_events()
        gc.collect()
        assert fds() == fds_before
        # Leg + LegMedia alone are tens of kB, a command ~150 bytes: 3000 cycles of ~20
        # commands leaking anything would show as megabytes.
        assert heap_in_use() - heap_before < 1 << 20
        stats = engine.stats()
        assert [w["legs"] for w in stats["workers"]] == [0, 0]
        assert [w["commands_queued"] for w in stats["workers"]] == [0, 0]
        assert stats["recordings"] == 0
        # Every port is back in the pool: the whole range opens again.
        legs = [engine.open_leg() for _ in range((CHURN_PORTS[1] - CHURN_PORTS[0] + 1) // 2)]
        with pytest.raises(MediaError, match=r"^no free RTP port in 7800-8799$"):
            engine.open_leg()
        for leg in legs:
            engine.close_leg(leg)
    finally:
        blaster.close()
        engine.stop()
    assert blaster.sent > 0


def test_churn_with_a_stalled_worker_then_stop(phones, tmp_path: Path) -> None:
    # Everything queued behind a parked worker (legs closed, players and recordings let
    # go) is applied and freed by stop(), with packets flowing meanwhile.
    sink = phones[0]
    engine = MediaEngine(workers=2, port_range=CHURN_PORTS)
    engine.start()
    blaster = Blaster(CHURN_PORTS)
    try:
        engine._stall_worker(1)
        churn(engine, sink, 40, tmp_path)
        assert queued(engine)[1] > 0
    finally:
        engine.stop()
        blaster.close()
    assert not any(port_is_bound(port) for port in range(CHURN_PORTS[0], CHURN_PORTS[0] + 160))


def test_a_mix_keeps_its_worker_so_no_two_workers_share_its_node(phones) -> None:
    # The mix empties on worker 0 (its leave still queued there, the worker parked): a
    # leg of worker 1 joining it moves to worker 0 behind that leave, never links the
    # mix into worker 1 while worker 0 may still mix it.
    a, b = phones[:2]
    engine = MediaEngine(workers=2, port_range=PORTS)
    engine.start()
    try:
        first, second = engine.open_leg(), engine.open_leg()
        assert (engine.leg_worker(first), engine.leg_worker(second)) == (0, 1)
        engine.set_remote(first, HOST, a.port)
        engine.set_remote(second, HOST, b.port)
        mix = engine.create_mix()
        engine.join_mix(mix, first)
        engine._stall_worker(0)
        engine.leave_mix(mix, first)
        engine.join_mix(mix, second)
        assert engine.leg_worker(second) == 0
        engine._resume_worker(0)
        engine.join_mix(mix, first)
        engine.sync()
        b.recv()  # second is mixed (with first, silent): the mix sends toward b
        assert engine.stats()["mixes"] == 1
    finally:
        engine.stop()


def test_an_emptied_mix_is_freed_on_its_worker_after_the_leaves_queued_before(phones) -> None:
    # The worker is parked with the leaves still queued: the free is queued behind them
    # (it must not free a node the worker will touch), and the mix is gone for callers.
    a, b = phones[:2]
    engine = MediaEngine(workers=1, port_range=PORTS)
    engine.start()
    try:
        first, second = engine.open_leg(), engine.open_leg()
        engine.set_remote(first, HOST, a.port)
        engine.set_remote(second, HOST, b.port)
        mix = engine.create_mix()
        engine.join_mix(mix, first)
        engine.join_mix(mix, second)
        with pytest.raises(MediaError, match="still has participants"):
            engine.destroy_mix(mix)
        engine._stall_worker(0)
        engine.leave_mix(mix, first)
        engine.leave_mix(mix, second)
        engine.destroy_mix(mix)
        assert engine.stats()["mixes"] == 0
        engine._resume_worker(0)
        engine.sync()
        with pytest.raises(MediaError, match="no such mix"):
            engine.join_mix(mix, first)
        never_joined = engine.create_mix()
        engine.destroy_mix(never_joined)
        engine.bridge(first, second)  # the legs carry on as before
        engine.sync()
    finally:
        engine.stop()


# ---- any order of commands, workers parked and resumed at random ---------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from([
            "open_leg", "open_leg", "close_leg", "bridge", "unbridge", "set_remote",
            "play", "play_tone", "stop_playing", "send_dtmf", "record", "stop_recording",
            "create_mix", "join_mix", "leave_mix", "destroy_mix", "set_inband_dtmf", "stall",
            "resume",
        ]),
        st.integers(0, 7),
        st.integers(0, 7),
    ),
    max_size=40,
)


@pytest.fixture(scope="module")
def running() -> Iterator[MediaEngine]:
    engine = MediaEngine(workers=3, port_range=CHURN_PORTS)
    engine.start()
    yield engine
    engine.stop()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_command_sequence_with_parked_workers_settles(running, tmp_path: Path,
                                                          ops: list[tuple[str, int, int]]) -> None:
    engine = running
    legs: list[int] = []
    made: dict[str, list[int]] = {"recording": [], "mix": []}

    def pick(kind: list[int], k: int) -> int:
        return kind[k % len(kind)] if kind else 10**6 + k  # unknown ids are refused

    for name, x, y in ops:
        leg, other = pick(legs, x), pick(legs, y)
        try:
            if name == "open_leg":
                legs.append(engine.open_leg(group=f"g{x}" if y % 2 else None))
            elif name == "close_leg":
                engine.close_leg(leg)
                legs.remove(leg)
            elif name == "bridge":
                engine.bridge(leg, other)
            elif name == "unbridge":
                engine.unbridge(leg)
            elif name == "set_remote":
                engine.set_remote(leg, HOST, 9, payload_type=8 * (y % 2),
                                  dtmf_payload_type=None if y == 7 else 101)
            elif name == "play":
                engine.play(leg, [bytes(2 * 160 * (y + 1))], loop=y % 2 == 0)
            elif name == "play_tone":
                engine.play_tone(leg, ("dial", "ringback", "busy", "congestion")[y % 4])
            elif name == "stop_playing":
                engine.stop_playing(leg)
            elif name == "send_dtmf":
                engine.send_dtmf(leg, "1#"[: 1 + y % 2], duration_ms=40)
            elif name == "record":
                made["recording"].append(engine.record(
                    leg, other if y % 2 else None, tmp_path / f"r{x}.wav", stereo=y < 4))
            elif name == "stop_recording":
                engine.stop_recording(pick(made["recording"], x))
            elif name == "create_mix":
                made["mix"].append(engine.create_mix())
            elif name == "join_mix":
                engine.join_mix(pick(made["mix"], y), leg)
            elif name == "leave_mix":
                engine.leave_mix(pick(made["mix"], y), leg)
            elif name == "destroy_mix":
                engine.destroy_mix(pick(made["mix"], y))
            elif name == "set_inband_dtmf":
                engine.set_inband_dtmf(leg, y % 2 == 0)
            elif name == "stall":  # one parked worker at a time (see _stall_worker)
                for index in range(3):
                    engine._resume_worker(index)
                engine._stall_worker(x % 3)
            elif name == "resume":
                engine._resume_worker(x % 3)
        except (MediaError, ValueError):
            pass  # refused at once, as a caller's mistake should be
    for index in range(3):
        engine._resume_worker(index)
    for leg in legs:
        engine.close_leg(leg)
    engine.sync()
    engine.drain_events()
    stats = engine.stats()
    assert [(w["legs"], w["commands_queued"]) for w in stats["workers"]] == [(0, 0)] * 3
    assert stats["recordings"] == 0
