"""`callcenter recordings repair`, run for real in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from switch.media.wav import encode_wav

pytestmark = pytest.mark.integration  # real processes

REPO = Path(__file__).resolve().parent.parent
AUDIO = bytes(range(256)) * 4  # 256 stereo frames


def callcenter(cwd: Path, *args: str, expect: int) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CALLCENTER_")}
    environ["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "callcenter", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect, result.stderr
    assert "Traceback" not in result.stderr
    return result


def crashed_recording(path: Path, audio: bytes, header_bytes: int) -> Path:
    """A stereo recording whose header covers only its first ``header_bytes`` of audio."""
    header = bytearray(encode_wav(b"", channels=2))
    header[4:8] = (36 + header_bytes).to_bytes(4, "little")
    header[40:44] = header_bytes.to_bytes(4, "little")
    path.write_bytes(bytes(header) + audio)
    return path


def frames(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        data: bytes = wav.readframes(wav.getnframes())
    return data


def test_repair_keeps_every_whole_frame(tmp_path: Path) -> None:
    first = crashed_recording(tmp_path / "a.wav", AUDIO, header_bytes=400)
    second = crashed_recording(tmp_path / "b.wav", AUDIO + b"\x01\x02\x03", header_bytes=0)

    result = callcenter(tmp_path, "recordings", "repair", str(first), str(second), expect=0)

    assert result.stdout == (
        f"{first}: 256 frames kept\n{second}: 256 frames kept, a partial frame of 3 bytes cut off\n"
    )
    assert frames(first) == frames(second) == AUDIO


def test_bad_files_are_reported_and_the_good_ones_still_repaired(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")
    good = crashed_recording(tmp_path / "good.wav", AUDIO, header_bytes=0)
    missing = tmp_path / "missing.wav"

    result = callcenter(
        tmp_path, "recordings", "repair", str(junk), str(good), str(missing), expect=1
    )

    assert result.stdout == f"{good}: 256 frames kept\n"
    assert result.stderr == (
        f"callcenter: cannot repair {junk}: not a RIFF/WAVE file\n"
        f"callcenter: cannot repair {missing}: No such file or directory\n"
    )
    assert frames(good) == AUDIO
    assert junk.read_bytes() == b"not audio"


def test_repair_without_files_is_a_usage_error(tmp_path: Path) -> None:
    result = callcenter(tmp_path, "recordings", "repair", expect=2)
    assert "the following arguments are required: FILE" in result.stderr
