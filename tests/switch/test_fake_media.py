"""FakeMediaEngine: the same surface as MediaEngine, commands recorded, events injected.

The drift checks compare the fake against the compiled engine and its .pyi; the parity
checks give the same mistakes to a real (stopped, loopback-only) MediaEngine and to the
fake and expect the same exception type and message.
"""

import ast
import asyncio
import inspect
import os
import select
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import switch.media
from switch.media import DtmfReceived, MediaEngine, MediaError, PlaybackFinished, RtpTimedOut
from tests.switch.fake_media import FakeMediaEngine

PYI = Path(switch.media.__file__).parent / "engine.pyi"
TEST_CONTROLS = {"emit", "finish_playback", "fail_next", "set_leg_stats", "close"}
TEST_STATE = {"commands", "legs", "recordings", "mixes", "hearing", "running"}
REAL_PORTS = (7440, 7479)


@pytest.fixture
def fake() -> Iterator[FakeMediaEngine]:
    engine = FakeMediaEngine(workers=1, port_range=REAL_PORTS)
    yield engine
    engine.close()


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


# -- the fake cannot drift from the engine


def public_names(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_fake_has_every_public_member_of_the_compiled_engine() -> None:
    engine_names = public_names(MediaEngine)
    fake_names = public_names(FakeMediaEngine) | TEST_STATE
    assert engine_names <= fake_names
    assert fake_names - engine_names == TEST_CONTROLS | TEST_STATE


@pytest.mark.parametrize(
    "name",
    sorted(n for n in public_names(MediaEngine) if callable(getattr(MediaEngine, n))),
)
def test_method_signature_equals_compiled_engine(name: str) -> None:
    engine_sig = inspect.signature(getattr(MediaEngine, name))
    fake_sig = inspect.signature(getattr(FakeMediaEngine, name))
    as_tuples = [(p.name, p.kind, p.default) for p in engine_sig.parameters.values()]
    assert [(p.name, p.kind, p.default) for p in fake_sig.parameters.values()] == as_tuples


def pyi_signatures() -> dict[str, str]:
    """Each MediaEngine member of engine.pyi as its unparsed argument list + return."""
    tree = ast.parse(PYI.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MediaEngine")
    found = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = f"({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
    return found


def fake_signatures() -> dict[str, str]:
    tree = ast.parse(Path(inspect.getfile(FakeMediaEngine)).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "FakeMediaEngine")
    return {
        node.name: f"({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
        for node in cls.body
        if isinstance(node, ast.FunctionDef)
    }


def test_annotated_signatures_equal_engine_pyi() -> None:
    stub = pyi_signatures()
    ours = fake_signatures()
    assert {name: ours.get(name) for name in stub} == stub


# -- commands are recorded in order


def test_a_call_flow_is_recorded_in_order(fake: FakeMediaEngine) -> None:
    fake.start()
    caller = fake.open_leg(group="call-1")
    agent = fake.open_leg(group="call-1", rtcp_mux=True)
    fake.set_remote(caller, "192.0.2.10", 40000)
    fake.play_tone(caller, "ringback")
    fake.set_remote(agent, "192.0.2.20", 40002, payload_type=8, dtmf_payload_type=None)
    fake.stop_playing(caller)
    fake.bridge(caller, agent)
    rec = fake.record(caller, agent, "/tmp/x.wav", stereo=False)
    fake.send_dtmf(caller, "12#", duration_ms=80)
    fake.stop_recording(rec)
    fake.close_leg(agent)
    fake.close_leg(caller)
    assert fake.commands == [
        ("start",),
        ("open_leg", "call-1", False),
        ("open_leg", "call-1", True),
        ("set_remote", caller, "192.0.2.10", 40000, 0, 101),
        ("play_tone", caller, "ringback"),
        ("set_remote", agent, "192.0.2.20", 40002, 8, None),
        ("stop_playing", caller),
        ("bridge", caller, agent),
        ("record", caller, agent, "/tmp/x.wav", False),
        ("send_dtmf", caller, "12#", 80),
        ("stop_recording", rec),
        ("close_leg", agent),
        ("close_leg", caller),
    ]
    assert fake.legs == {}


def test_queries_answer_from_bookkeeping_and_are_not_commands(fake: FakeMediaEngine) -> None:
    a, b = fake.open_leg(), fake.open_leg()
    assert (fake.leg_port(a), fake.leg_port(b)) == (7440, 7442)
    fake.set_leg_stats(a, received=50, mos=4.3)
    assert fake.leg_stats(a)["received"] == 50
    assert fake.leg_stats(a)["mos"] == 4.3
    assert set(fake.leg_stats(b)) == {
        "received",
        "sent",
        "dropped_invalid",
        "dropped_stranger",
        "relayed",
        "rtcp_received",
        "lost",
        "jitter_ms",
        "mos",
        "rtt_ms",
    }
    assert fake.stats()["workers"] == [
        {"index": 0, "legs": 2, "ticks": 0, "tick_overruns": 0, "commands_queued": 0}
    ]
    assert fake.commands == [("open_leg", None, False), ("open_leg", None, False)]


def test_closed_ports_are_reused_and_exhaustion_is_a_media_error() -> None:
    fake = FakeMediaEngine(workers=1, port_range=(9000, 9003))
    try:
        a = fake.open_leg()
        b = fake.open_leg()
        with pytest.raises(MediaError, match="no free RTP port in 9000-9003"):
            fake.open_leg()
        fake.close_leg(a)
        c = fake.open_leg()
        assert fake.leg_port(c) == 9000
        assert fake.leg_port(b) == 9002
    finally:
        fake.close()


def test_closing_a_leg_stops_its_recordings_and_mix(fake: FakeMediaEngine) -> None:
    a, b, c = fake.open_leg(), fake.open_leg(), fake.open_leg()
    rec = fake.record(a, b, "/tmp/r.wav")
    mix = fake.create_mix()
    fake.join_mix(mix, c)
    fake.join_mix(mix, b)
    fake.close_leg(b)
    assert fake.recordings == {}
    assert fake.mixes[mix] == {c: 0}
    with pytest.raises(MediaError, match=f"no such recording: {rec}"):
        fake.stop_recording(rec)


def test_bridge_refuses_to_move_a_leg_mixed_on_another_worker() -> None:
    fake = FakeMediaEngine(workers=2, port_range=REAL_PORTS)
    try:
        a, b = fake.open_leg(), fake.open_leg()
        assert fake.leg_worker(a) != fake.leg_worker(b)
        mix = fake.create_mix()
        fake.join_mix(mix, b)
        with pytest.raises(MediaError, match=f"leg {b} is recorded or mixed on another worker"):
            fake.bridge(a, b)
        fake.leave_mix(mix, b)
        fake.bridge(a, b)
        assert fake.leg_worker(b) == fake.leg_worker(a)
        assert (fake.legs[a].peer, fake.legs[b].peer) == (b, a)
    finally:
        fake.close()


def test_monitor_records_one_command_and_sets_whisper_hearing(fake: FakeMediaEngine) -> None:
    sup, agent, cust = fake.open_leg(), fake.open_leg(), fake.open_leg()
    mix = fake.monitor(sup, agent, cust, "whisper")
    assert fake.commands[-1] == ("monitor", sup, agent, cust, "whisper")
    assert set(fake.mixes[mix]) == {sup, agent, cust}
    assert fake.hearing[mix][(agent, sup)] is True
    assert fake.hearing[mix][(cust, sup)] is False
    assert fake.monitor(sup, agent, cust, "barge") == mix
    assert fake.hearing[mix][(cust, sup)] is True


def test_fail_next_injects_one_failure(fake: FakeMediaEngine) -> None:
    fake.fail_next("open_leg", MediaError("no free RTP port in 1-2"))
    with pytest.raises(MediaError, match="no free RTP port"):
        fake.open_leg()
    assert fake.open_leg() == 1
    with pytest.raises(AttributeError):
        fake.fail_next("open_legs", MediaError("typo"))


def test_start_twice_is_refused(fake: FakeMediaEngine) -> None:
    fake.start()
    with pytest.raises(MediaError, match="media engine already started"):
        fake.start()
    fake.open_leg()
    fake.stop()
    assert fake.legs == {}
    assert fake.commands == [("start",), ("open_leg", None, False), ("stop",)]


# -- events


def test_emitted_events_make_events_fd_readable_until_drained(fake: FakeMediaEngine) -> None:
    assert not readable(fake.events_fd)
    assert fake.drain_events() == []
    fake.emit(DtmfReceived(1, "5", 120))
    fake.emit(RtpTimedOut(2, 30.0))
    assert readable(fake.events_fd)
    assert fake.drain_events() == [DtmfReceived(1, "5", 120), RtpTimedOut(2, 30.0)]
    assert not readable(fake.events_fd)
    assert fake.drain_events() == []


def test_finish_playback_only_for_a_non_looping_play(fake: FakeMediaEngine) -> None:
    leg = fake.open_leg()
    fake.play(leg, [b"\x00\x00" * 160], loop=True)
    with pytest.raises(MediaError):
        fake.finish_playback(leg)
    fake.play(leg, ["/prompts/welcome.wav"])
    fake.finish_playback(leg)
    assert fake.drain_events() == [PlaybackFinished(leg)]


async def test_asyncio_add_reader_wakes_on_emit(fake: FakeMediaEngine) -> None:
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[object] = asyncio.Queue()

    def on_readable() -> None:
        for event in fake.drain_events():
            got.put_nowait(event)

    loop.add_reader(fake.events_fd, on_readable)
    try:
        loop.call_soon(fake.emit, DtmfReceived(3, "#", 100))
        assert await asyncio.wait_for(got.get(), 5) == DtmfReceived(3, "#", 100)
    finally:
        loop.remove_reader(fake.events_fd)


def test_close_releases_the_eventfd() -> None:
    fake = FakeMediaEngine(workers=1)
    fd = fake.events_fd
    fake.close()
    with pytest.raises(OSError):
        os.fstat(fd)


# -- the same mistakes give the same errors as the real engine

Mistake = Callable[[Any, int, int], object]

MISTAKES: dict[str, Mistake] = {
    "unknown leg": lambda e, a, b: e.leg_port(999),
    "leg id not int": lambda e, a, b: e.close_leg("1"),
    "bad group": lambda e, a, b: e.open_leg(group=5),
    "host not ipv4": lambda e, a, b: e.set_remote(a, "example.com", 4000),
    "host not str": lambda e, a, b: e.set_remote(a, 1, 4000),
    "port zero": lambda e, a, b: e.set_remote(a, "127.0.0.1", 0),
    "port bool": lambda e, a, b: e.set_remote(a, "127.0.0.1", True),
    "payload type": lambda e, a, b: e.set_remote(a, "127.0.0.1", 4000, 128),
    "dtmf payload type": lambda e, a, b: e.set_remote(a, "127.0.0.1", 4000, 0, -1),
    "bridge to self": lambda e, a, b: e.bridge(a, a),
    "record without path": lambda e, a, b: e.record(a),
    "record against self": lambda e, a, b: e.record(a, a, "/tmp/x.wav"),
    "record stereo not bool": lambda e, a, b: e.record(a, b, "/tmp/x.wav", stereo=1),
    "unknown recording": lambda e, a, b: e.stop_recording(42),
    "empty prompts": lambda e, a, b: e.play(a, []),
    "prompts not a list": lambda e, a, b: e.play(a, "x.wav"),
    "unknown tone": lambda e, a, b: e.play_tone(a, "siren"),
    "bad digits": lambda e, a, b: e.send_dtmf(a, "12x"),
    "no digits": lambda e, a, b: e.send_dtmf(a, ""),
    "dtmf too short": lambda e, a, b: e.send_dtmf(a, "1", duration_ms=10),
    "inband not bool": lambda e, a, b: e.set_inband_dtmf(a, 1),
    "unknown mix": lambda e, a, b: e.join_mix(77, a),
    "leave not member": lambda e, a, b: e.leave_mix(e.create_mix(), a),
    "hearing not member": lambda e, a, b: e.set_hearing(e.create_mix(), a, b, True),
    "monitor mode": lambda e, a, b: e.monitor(a, b, 3, "spy"),
    "monitor same legs": lambda e, a, b: e.monitor(a, b, b, "listen"),
    "monitor unknown leg": lambda e, a, b: e.monitor(a, b, 999, "listen"),
}


def outcome(engine: Any, mistake: Mistake) -> tuple[str, str]:
    a, b = engine.open_leg(), engine.open_leg()
    engine.open_leg()
    try:
        mistake(engine, a, b)
    except (ValueError, TypeError, MediaError) as error:
        return type(error).__name__, str(error)
    return "no error", ""


@pytest.fixture
def real() -> Iterator[MediaEngine]:
    engine = MediaEngine(workers=1, port_range=REAL_PORTS)
    yield engine
    engine.stop()


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_gives_the_real_engines_error(
    real: MediaEngine, fake: FakeMediaEngine, mistake: Mistake
) -> None:
    expected = outcome(real, mistake)
    assert expected[0] != "no error"
    assert outcome(fake, mistake) == expected


def test_send_dtmf_without_telephone_event_type(real: MediaEngine, fake: FakeMediaEngine) -> None:
    def mistake(e: Any, a: int, b: int) -> object:
        e.set_remote(a, "127.0.0.1", 4000, 0, None)
        return e.send_dtmf(a, "1")

    assert outcome(fake, mistake) == outcome(real, mistake)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workers": 0},
        {"port_range": (10, 5)},
        {"port_range": (7441, 7441)},
        {"bind_host": "localhost"},
        {"rtp_timeout_s": 0},
        {"relatch_silence_s": -1},
        {"wakeup_window_us": 20000},
        {"ssrc_seed": "x"},
    ],
)
def test_constructor_mistakes_match(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as real_error:
        MediaEngine(**kwargs)
    with pytest.raises(ValueError) as fake_error:
        FakeMediaEngine(**kwargs)
    assert str(fake_error.value) == str(real_error.value)


# Random command sequences: the real (stopped) engine and the fake agree on every return
# value that is an id and on every refusal.
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "open_leg",
                "close_leg",
                "bridge",
                "unbridge",
                "create_mix",
                "join_mix",
                "leave_mix",
                "record",
                "stop_recording",
                "leg_port",
                "set_inband_dtmf",
            ]
        ),
        st.integers(0, 5),
        st.integers(0, 5),
    ),
    max_size=25,
)


def apply(engine: Any, ops: list[tuple[str, int, int]]) -> list[object]:
    results: list[object] = []
    for name, x, y in ops:
        args: tuple[object, ...] = {
            "open_leg": (),
            "close_leg": (x,),
            "bridge": (x, y),
            "unbridge": (x,),
            "create_mix": (),
            "join_mix": (x, y),
            "leave_mix": (x, y),
            "record": (x, y or None, "/dev/null"),
            "stop_recording": (x,),
            "leg_port": (x,),
            "set_inband_dtmf": (x, bool(y % 2)),
        }[name]
        try:
            results.append(getattr(engine, name)(*args))
        except (ValueError, MediaError) as error:
            results.append((type(error).__name__, str(error)))
    return results


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_random_sequences_agree_with_the_real_engine(ops: list[tuple[str, int, int]]) -> None:
    real = MediaEngine(workers=2, port_range=REAL_PORTS)
    fake = FakeMediaEngine(workers=2, port_range=REAL_PORTS)
    try:
        assert apply(fake, ops) == apply(real, ops)
    finally:
        real.stop()
        fake.close()
