"""baresip 1.0.0 (Debian) driven as a phone: commands and events over its ctrl_tcp
interface (netstring-framed JSON), audio from a WAV, what it sends and hears dumped by
the sndfile filter.

What the Debian package's modules give us, and so how audio is done:
- `aufile` is only an audio *source* in 1.0.0 (no player): it plays a WAV that must be
  S16LE at the source's sample rate (8 kHz mono here, as G.711 runs). At the file's end
  baresip closes the call, so the file is longer than any test call.
- `ausine` wants 48 kHz stereo, which this setup does not run; not used.
- `sndfile` is an audio filter that writes `dump-<time>-enc.wav` (what baresip sends)
  and `dump-<time>-dec.wav` (what it hears, decoded) into `snd_path`, one pair per call,
  finished when the call's audio stream goes away.
- No audio player is loaded: the received stream is decoded (and dumped) all the same.
- `menu` provides the `dial`, `accept` and `hangup` commands that ctrl_tcp executes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.integration.test_pri_calls import WAIT_S, tone_pcm, until, wait, write_wav

BARESIP_RTP = (44100, 44199)
START_TIMEOUT_S = 10.0
TONE_FILE_S = 30.0  # longer than any call here: the file's end would close the call

CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
audio_source aufile,{source}
rtp_ports {rtp_lo}-{rtp_hi}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module sndfile.so
snd_path {dumps}
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""


# The outcome of a REGISTER as baresip prints it: a final status such as
# "1001@127.0.0.1: {0/UDP/v4} 200 OK (callcenter) [1 binding]" or "... 403 Forbidden",
# or a local failure such as "reg: ...: Register: Function not implemented".
_REGISTER_OUTCOME = re.compile(r"\b[2-6]\d\d [A-Z]|Register: ")


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_sip_port() -> int:
    """A port free for UDP and TCP at once: baresip's `sip_listen` binds both, and a port
    the kernel handed out as free for UDP may be some client's TCP port right now."""
    while True:
        udp_port = _free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", udp_port))
            except OSError:
                continue
        return udp_port


class PortTaken(Exception):
    """baresip could not bind a port we chose: another process took it in between."""


class BaresipPhone:
    """One baresip process with one account. Events arrive on `events` as dicts."""

    def __init__(self, executable: str, home: Path) -> None:
        self.executable = executable
        self.home = home
        self.dumps = home / "dumps"
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []  # every event and response, for failures
        self.output: list[str] = []  # baresip's console, for failures
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tokens = 0
        self.ctrl_port = 0

    def configure(self, extension: str, password: str, switch_port: int,
                  tone_hz: float) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.dumps.mkdir(exist_ok=True)
        source = write_wav(self.home / "tone.wav", tone_pcm(tone_hz, TONE_FILE_S))
        self.ctrl_port = _free_port(socket.SOCK_STREAM)
        (self.home / "config").write_text(CONFIG.format(
            sip_port=_free_sip_port(), source=source, rtp_lo=BARESIP_RTP[0],
            rtp_hi=BARESIP_RTP[1], dumps=self.dumps, ctrl_port=self.ctrl_port))
        # answermode=manual: the test accepts, so it knows the call it accepts.
        (self.home / "accounts").write_text(
            f"<sip:{extension}@127.0.0.1:{switch_port};transport=udp>"
            f";auth_pass={password};regint=600;answermode=manual\n")

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self.executable, "-4", "-f", str(self.home), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        registered: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.create_task(self._read_console(registered)))
        # ctrl_tcp listens before the account registers, so once baresip printed the
        # REGISTER's outcome the control port is there to connect to.
        try:
            line = await asyncio.wait_for(registered, START_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"baresip did not register\n{self.transcript()}") from None
        except AssertionError:
            if "Address already in use" in "".join(self.output):
                raise PortTaken(self.transcript()) from None
            raise
        assert "200 OK" in line, self.transcript()
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        self._tasks.append(asyncio.create_task(self._read_ctrl(reader)))

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _read_console(self, registered: asyncio.Future[str]) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode("utf-8", "replace")
            self.output.append(text)
            if not registered.done() and _REGISTER_OUTCOME.search(text):
                registered.set_result(text)
        if not registered.done():
            registered.set_exception(AssertionError(
                f"baresip exited before registering:\n{self.transcript()}"))

    async def _read_ctrl(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                length = int((await reader.readuntil(b":"))[:-1])
                payload = await reader.readexactly(length + 1)  # and the trailing ","
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            message = json.loads(payload[:-1])
            self.seen.append(message)
            if message.get("event"):
                self.events.put_nowait(message)
            elif message.get("response"):
                future = self._responses.pop(str(message.get("token")), None)
                if future is not None and not future.done():
                    future.set_result(message)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        """Run a command (as typed in baresip's console, without the slash) and return
        its response."""
        assert self._writer is not None
        self._tokens += 1
        token = str(self._tokens)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(b"%d:%s," % (len(body), body))
        await self._writer.drain()
        await wait(future, f"baresip's response to {command}")
        response = future.result()
        assert response.get("ok"), (response, self.transcript())
        return response

    async def event(self, kind: str) -> dict[str, Any]:
        """The next event of type `kind` (e.g. CALL_ESTABLISHED); others are passed over."""
        async def next_of_kind() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                if event.get("type") == kind:
                    return event

        try:
            return await asyncio.wait_for(next_of_kind(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for baresip's {kind} event\n"
                                 f"{self.transcript()}") from None

    def dump(self, direction: str) -> Path:
        """The WAV of what baresip sent ("enc") or heard ("dec") on its one call."""
        found = sorted(self.dumps.glob(f"dump-*-{direction}.wav"))
        assert len(found) == 1, (found, self.transcript())
        return found[0]

    async def finished_dump(self, direction: str) -> Path:
        """`dump(direction)` once the call's audio stream let go of it (the WAV header
        gets its length when sndfile closes the file)."""
        path = self.dump(direction)

        def finished() -> bool:
            with wave.open(str(path)) as wav:
                return int(wav.getnframes()) > 0

        await until(finished, f"baresip to finish {path.name}")
        return path

    def transcript(self) -> str:
        events = "\n".join(json.dumps(e) for e in self.seen[-20:])
        return f"baresip console:\n{''.join(self.output[-40:])}\nctrl_tcp:\n{events}"


@asynccontextmanager
async def baresip_phone(executable: str, home: Path, extension: str, password: str,
                        switch_port: int, tone_hz: float) -> AsyncIterator[BaresipPhone]:
    """A baresip registered as `extension`, sending `tone_hz` on every call."""
    # Ports are chosen free but only bound by baresip later; if another process took one
    # in between, start again with new ports (three tries, then the failure stands).
    for attempt in range(3):
        phone = BaresipPhone(executable, home)
        phone.configure(extension, password, switch_port, tone_hz)
        try:
            await phone.start()
        except PortTaken:
            await phone.stop()
            if attempt == 2:
                raise
            continue
        except BaseException:
            await phone.stop()
            raise
        break
    try:
        yield phone
    finally:
        await phone.stop()
