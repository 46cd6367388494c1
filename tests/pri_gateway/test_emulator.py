"""The gateway emulator over real loopback sockets: two emulators call each other
directly (A's "switch" is B), so every check is what a switch would see from a gateway.

Nothing sleeps: tests wait on the calls' asyncio events with timeouts; call lengths are
part of the call script (hang up N seconds after the answer)."""

from __future__ import annotations

import asyncio
import sys
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from switch.pri_gateway.emulator import (
    EmulatedCall,
    EmulatorError,
    GatewayEmulator,
    Outcome,
    main,
)

pytestmark = pytest.mark.integration

WAIT_S = 10.0
A_PORTS = (32400, 32799)
B_PORTS = (32000, 32399)


@asynccontextmanager
async def pair(tmp_path: Path, *, a_spans: int = 1, b_spans: int = 1,
               ) -> AsyncIterator[tuple[GatewayEmulator, GatewayEmulator]]:
    b = GatewayEmulator(spans=b_spans, media_ports=B_PORTS, recordings_dir=tmp_path / "b",
                        answer_audio=("tone", 400.0))
    async with b:
        a = GatewayEmulator(switch=b.address, spans=a_spans, media_ports=A_PORTS,
                            recordings_dir=tmp_path / "a")
        async with a:
            yield a, b


async def ended(*calls: EmulatedCall) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.ended.wait() for c in calls)), WAIT_S)


def dominant_hz(path: Path) -> float:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert len(samples) >= 4000, f"only {len(samples)} samples recorded"
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


async def test_answered_call_carries_audio_both_ways_and_bye_reason(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b):
        call = await a.place_call("13800138000", "4008001234", audio=("tone", 1000.0),
                                  hangup_after_s=1.0, q850_cause=31)
        await asyncio.wait_for(call.answered.wait(), WAIT_S)
        far = b.calls[call.call_id]
        assert (far.caller, far.called, far.placed) == ("13800138000", "4008001234", False)
        await ended(call, far)
        assert call.final_status == 200 and far.final_status == 200
        assert (call.end_cause, far.end_cause) == ("bye-sent", "bye-received")
        assert far.remote_reason == 31
        assert far.bye is not None and far.bye.headers.get("Reason") == (
            'Q.850;cause=31;text="Normal, unspecified"')
        assert call.bye is None  # A hung up itself
        assert call.recording_path is not None and far.recording_path is not None
        assert abs(dominant_hz(far.recording_path) - 1000) < 10  # A's tone reached B
        assert abs(dominant_hz(call.recording_path) - 400) < 10  # B's tone reached A
        assert a.busy_channels == 0 and b.busy_channels == 0


async def test_dtmf_script_arrives_as_rfc4733_digits(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b):
        call = await a.place_call("13800138000", "4008001234", audio=("tone", 1000.0),
                                  dtmf=[(0.1, "12"), (0.5, "#9")], hangup_after_s=5.0)
        await asyncio.wait_for(call.answered.wait(), WAIT_S)
        far = b.calls[call.call_id]
        assert await asyncio.wait_for(far.wait_digits(4), WAIT_S) == "12#9"
        call.hangup(17)
        await ended(call, far)
        assert far.remote_reason == 17
        assert call.digits == ""  # B sent none


@pytest.mark.parametrize(("outcome", "status", "cause"), [
    (Outcome.BUSY, 486, 17),
    (Outcome.UNALLOCATED, 404, 1),
    (Outcome.CONGESTION, 503, 34),
    (Outcome.NO_ANSWER, 480, 19),
])
async def test_scripted_outcomes_give_status_and_q850_reason(
        tmp_path: Path, outcome: Outcome, status: int, cause: int) -> None:
    async with pair(tmp_path) as (a, b):
        b.set_outcome("4008", outcome)
        b.set_outcome("40080019", Outcome.ANSWER)  # the longest prefix wins
        b.set_no_answer_timeout(0.3)
        call = await a.place_call("13800138000", "4008001234")
        other = await a.place_call("13800138000", "4008001999", hangup_after_s=0.2)
        await ended(call, other)
        assert (call.final_status, call.remote_reason) == (status, cause)
        assert not call.answered.is_set() and call.recording_path is None
        assert other.answered.is_set() and other.final_status == 200
        assert b.calls[call.call_id].final_status == status


async def test_31st_call_on_one_span_gets_503_cause_34(tmp_path: Path) -> None:
    async with pair(tmp_path, a_spans=2, b_spans=1) as (a, b):
        calls = [await a.place_call("13800138000", f"40080012{n:02d}") for n in range(31)]
        await asyncio.wait_for(asyncio.gather(*(c.answered.wait() for c in calls[:30])),
                               WAIT_S)
        await ended(calls[30])
        assert (calls[30].final_status, calls[30].remote_reason) == (503, 34)
        assert b.busy_channels == 30
        calls[0].hangup()
        await ended(calls[0], b.calls[calls[0].call_id])
        retry = await a.place_call("13800138000", "4008001299")  # a channel is free again
        await asyncio.wait_for(retry.answered.wait(), WAIT_S)


async def test_place_call_refuses_beyond_own_channels(tmp_path: Path) -> None:
    async with pair(tmp_path, a_spans=1, b_spans=2) as (a, _b):
        for n in range(30):
            await a.place_call("13800138000", f"40080012{n:02d}")
        with pytest.raises(EmulatorError, match=r"^all 30 channels are busy$"):
            await a.place_call("13800138000", "4008001299")


async def yield_until(condition: Callable[[], bool]) -> None:
    """Let the loop run (no timed sleep) until the emulator has read the datagram."""
    while not condition():
        await asyncio.sleep(0)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.put_nowait(data)


def options(port: int, seq: int) -> bytes:
    return (f"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-opt{seq}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:switch@127.0.0.1>;tag=s1\r\n"
            f"To: <sip:gw@127.0.0.1>\r\nCall-ID: keepalive-{seq}\r\n"
            f"CSeq: {seq} OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


async def test_options_answered_200_unless_down(tmp_path: Path) -> None:
    async with pair(tmp_path) as (_a, b):
        loop = asyncio.get_running_loop()
        transport, probe = await loop.create_datagram_endpoint(
            _Udp, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            b.set_down(True)
            transport.sendto(options(port, 1), b.address)
            await asyncio.wait_for(yield_until(lambda: b.ignored_while_down == 1), WAIT_S)
            b.set_down(False)
            transport.sendto(options(port, 2), b.address)
            reply = await asyncio.wait_for(probe.received.get(), WAIT_S)
            # The first reply is to the second OPTIONS: the one sent while down got none.
            assert reply.startswith(b"SIP/2.0 200 OK\r\n")
            assert b"CSeq: 2 OPTIONS" in reply
        finally:
            transport.close()


async def test_program_places_a_call_and_prints_its_outcome(tmp_path: Path) -> None:
    b = GatewayEmulator(media_ports=B_PORTS, recordings_dir=tmp_path / "b")
    b.set_outcome("4009", Outcome.BUSY)
    async with b:
        results = []
        for called in ("4008001234", "4009001234"):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "switch.pri_gateway.emulator",
                "--switch", f"127.0.0.1:{b.address[1]}", "--call", f"13800138000:{called}",
                "--tone", "1000", "--seconds", "0.3", "--media-ports", "32800:32899",
                "--recordings", str(tmp_path / "cli"),
                stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(process.communicate(), WAIT_S)
            results.append((process.returncode, out.decode().splitlines()[-1]))
    assert results[0][0] == 0
    assert results[0][1].startswith("13800138000 -> 4008001234: 200, ended: bye-sent")
    assert results[1][0] == 1
    assert results[1][1].startswith("13800138000 -> 4009001234: 486 Q.850 cause 17, ")


def test_program_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--call", "1:2"])
    assert exit_info.value.code == 2
    assert "give --switch and --call to place a call, or --listen" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--switch", "127.0.0.1:5060", "--call", "12345"])
    assert "expected CALLER:CALLED, got '12345'" in capsys.readouterr().err


async def test_hold_and_resume_reinvites_are_answered(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b):
        call = await a.place_call("13800138000", "4008001234", audio=("tone", 1000.0))
        await asyncio.wait_for(call.answered.wait(), WAIT_S)
        far = b.calls[call.call_id]
        call.hold()
        await asyncio.wait_for(far.reinvited.wait(), WAIT_S)
        assert far.held and far.reinvites_answered == 1
        far.reinvited.clear()
        call.resume()
        await asyncio.wait_for(far.reinvited.wait(), WAIT_S)
        assert not far.held and far.reinvites_answered == 2
        call.hangup()
        await ended(call, far)
        assert far.remote_reason == 16


async def test_hangup_before_answer_cancels(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b):
        b.set_outcome("", Outcome.NO_ANSWER)  # rings for 30 s
        call = await a.place_call("13800138000", "4008001234")
        await asyncio.wait_for(yield_until(lambda: call.call_id in b.calls), WAIT_S)
        call.hangup()
        far = b.calls[call.call_id]
        await ended(call, far)
        assert call.final_status == 487 and far.end_cause == "cancelled"
        assert not far.answered.is_set()


async def test_extra_invite_headers_arrive_and_both_sides_keep_the_messages(
        tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b):
        b.set_outcome("4008", Outcome.BUSY)
        call = await a.place_call("13800138000", "4008001234",
                                  headers=[("P-Asserted-Identity", "<sip:1001@example.com>")])
        await ended(call)
        far = b.calls[call.call_id]
        assert far.invite is not None and call.invite is None
        assert far.invite.headers.get("P-Asserted-Identity") == "<sip:1001@example.com>"
        assert call.response is not None and far.response is None
        assert (call.response.status, call.response.headers.get("Reason")) == (
            486, 'Q.850;cause=17;text="User busy"')
