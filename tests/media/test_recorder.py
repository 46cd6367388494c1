"""Recorder: WAV files written off the worker, headers kept current, drops counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import wave
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switch.media.recorder import RecorderWriter

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 160
WAIT_S = 30.0  # an event wait's upper bound, not a sleep: it returns as soon as it's met


def frame(index: int, channel: int = 0) -> bytes:
    """A distinct 20 ms frame for each (index, channel)."""
    return array(
        "h", (((index * 7919 + k * 31 + channel * 20011) % 65536) - 32768 for k in range(SAMPLES))
    ).tobytes()


def interleave(left: bytes, right: bytes) -> bytes:
    out = array("h", bytes(2 * len(left)))
    out[0::2], out[1::2] = array("h", left), array("h", right)
    return out.tobytes()


def read_wav(path: Path) -> tuple[int, int, int, bytes]:
    with wave.open(str(path)) as wav:
        params = wav.getnchannels(), wav.getframerate(), wav.getsampwidth()
        return *params, wav.readframes(wav.getnframes())


@pytest.fixture
def writer() -> Iterator[RecorderWriter]:
    writer = RecorderWriter(poll_ms=5)
    yield writer
    writer.close()


def test_mono_file_holds_exactly_the_frames(writer: RecorderWriter, tmp_path: Path) -> None:
    recording = writer.open(tmp_path / "mono.wav", 1, ring_frames=64)
    for index in range(37):
        assert recording.write(frame(index))
    recording.close()

    assert read_wav(tmp_path / "mono.wav") == (
        1, 8000, 2, b"".join(frame(index) for index in range(37))
    )  # fmt: skip
    assert recording.frames_written == recording.flushed_frames == 37
    assert recording.dropped_frames == 0


def test_stereo_puts_customer_left_and_agent_right(writer: RecorderWriter, tmp_path: Path) -> None:
    recording = writer.open(tmp_path / "stereo.wav", 2, ring_frames=64)
    for index in range(30):
        assert recording.write(frame(index, 0), frame(index, 1))
    recording.close()

    channels, rate_hz, width, data = read_wav(tmp_path / "stereo.wav")
    assert (channels, rate_hz, width) == (2, 8000, 2)
    assert data == b"".join(interleave(frame(i, 0), frame(i, 1)) for i in range(30))


def test_header_covers_flushed_audio_while_recording(
    writer: RecorderWriter, tmp_path: Path
) -> None:
    path = tmp_path / "live.wav"
    recording = writer.open(path, 1, ring_frames=400, header_interval_ms=200)  # 10 frames
    assert read_wav(path)[3] == b""  # the header is there from the start
    for index in range(100):
        assert recording.write(frame(index))

    flushed = recording.wait_flushed(50, WAIT_S)
    assert flushed >= 50
    raw = path.read_bytes()  # the recording is still open
    data_bytes = int.from_bytes(raw[40:44], "little")
    assert data_bytes == flushed * SAMPLES * 2
    assert int.from_bytes(raw[4:8], "little") == 36 + data_bytes
    assert read_wav(path)[3] == b"".join(frame(index) for index in range(flushed))
    recording.close()


def test_flush_brings_the_header_up_to_date(writer: RecorderWriter, tmp_path: Path) -> None:
    recording = writer.open(tmp_path / "f.wav", 1, ring_frames=64, header_interval_ms=60_000)
    for index in range(3):  # fewer than a batch
        recording.write(frame(index))
    writer.flush()
    assert recording.flushed_frames == 3
    assert read_wav(tmp_path / "f.wav")[3] == frame(0) + frame(1) + frame(2)
    recording.close()


def test_slow_writer_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    # The writer wakes once a minute: a tiny ring overflows at once.
    writer = RecorderWriter(poll_ms=60_000)
    recording = writer.open(tmp_path / "slow.wav", 1, ring_frames=4, batch_frames=4)
    accepted = [recording.write(frame(index)) for index in range(50)]

    assert recording.dropped_frames == accepted.count(False) >= 50 - 8
    recording.close()
    kept = [frame(index) for index, ok in enumerate(accepted) if ok]
    assert read_wav(tmp_path / "slow.wav")[3] == b"".join(kept)
    writer.close()


def test_frames_after_close_are_ignored(writer: RecorderWriter, tmp_path: Path) -> None:
    recording = writer.open(tmp_path / "c.wav", 1)
    recording.write(frame(0))
    recording.close()
    recording.close()  # idempotent
    assert recording.closed
    assert recording.write(frame(1)) is False
    assert recording.dropped_frames == 0
    assert read_wav(tmp_path / "c.wav")[3] == frame(0)


def test_closing_the_writer_finishes_open_recordings(tmp_path: Path) -> None:
    writer = RecorderWriter(poll_ms=60_000)
    recording = writer.open(tmp_path / "w.wav", 2)
    recording.write(frame(0, 0), frame(0, 1))
    writer.close()
    assert recording.closed
    assert read_wav(tmp_path / "w.wav")[3] == interleave(frame(0, 0), frame(0, 1))
    with pytest.raises(ValueError) as excinfo:
        writer.open(tmp_path / "x.wav", 1)
    assert str(excinfo.value) == "recorder writer is closed"


@pytest.mark.parametrize(
    ("channels", "left", "right", "message"),
    [
        (2, frame(0), None, "a stereo recording takes a right (agent) frame too"),
        (1, frame(0), frame(0), "a mono recording takes one frame (the mix), got a right frame"),
        (1, b"\x00" * 318, None, "left: a frame is 160 samples (320 bytes), got 318 bytes"),
        (2, frame(0), b"", "right: a frame is 160 samples (320 bytes), got 0 bytes"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(
    writer: RecorderWriter,
    tmp_path: Path,
    channels: int,
    left: bytes,
    right: bytes | None,
    message: str,
) -> None:
    recording = writer.open(tmp_path / "bad.wav", channels)
    with pytest.raises(ValueError) as excinfo:
        recording.write(left, right)
    assert str(excinfo.value) == message
    recording.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"channels": 3},
            "channels must be 1 (mono mix) or 2 (stereo: customer left, agent right), got 3",
        ),
        ({"channels": 1, "ring_frames": 0}, "ring_frames must be at least 1, got 0"),
        (
            {"channels": 1, "ring_frames": 8, "batch_frames": 9},
            "batch_frames must be between 1 and ring_frames (8), got 9",
        ),
        (
            {"channels": 1, "header_interval_ms": 10},
            "header_interval_ms must be at least 20 (one frame), got 10",
        ),
    ],
)
def test_bad_open_arguments(
    writer: RecorderWriter, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        writer.open(tmp_path / "bad.wav", **kwargs)
    assert str(excinfo.value) == message
    assert not (tmp_path / "bad.wav").exists()


CRASHING_RECORDER = textwrap.dedent(
    """
    import sys, threading
    sys.path.insert(0, sys.argv[2])
    from tests.media.test_recorder import frame
    from switch.media.recorder import RecorderWriter

    writer = RecorderWriter(poll_ms=5)
    recording = writer.open(sys.argv[1], 2, ring_frames=1000, header_interval_ms=400)
    for index in range(130):
        recording.write(frame(index, 0), frame(index, 1))
    print("flushed", recording.wait_flushed(100, 30.0), flush=True)
    for index in range(130, 180):  # audio past the last header update
        recording.write(frame(index, 0), frame(index, 1))
    threading.Event().wait()  # until SIGKILL
    """
)


@pytest.mark.integration  # a real process, killed for real
def test_recording_killed_mid_call_is_repaired_by_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "crash.wav"
    with subprocess.Popen(
        [sys.executable, "-c", CRASHING_RECORDER, str(path), str(REPO)],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            word, count = process.stdout.readline().split()
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert word == "flushed"
    flushed = int(count)
    assert flushed >= 100

    environ = {key: value for key, value in os.environ.items() if not key.startswith("CALLCENTER_")}
    environ["PYTHONPATH"] = str(REPO)
    repaired = subprocess.run(
        [sys.executable, "-m", "callcenter", "recordings", "repair", str(path)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.startswith(f"{path}: ")

    channels, rate_hz, _, data = read_wav(path)
    assert (channels, rate_hz) == (2, 8000)
    n_frames = len(data) // (SAMPLES * 4)
    assert flushed <= n_frames <= 180
    assert len(data) % 4 == 0
    whole = data[: n_frames * SAMPLES * 4]
    assert whole == b"".join(interleave(frame(i, 0), frame(i, 1)) for i in range(n_frames))
