"""Runs the real `callcenter serve` in a subprocess on loopback, for integration tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from apps import Database, UserService, upgrade_database
from tests.integration.peers import LineReader

READY_TIMEOUT_S = 30.0
_LISTEN = re.compile(r"SIP listening on (UDP|TCP) ([\d.]+):(\d+)")


@dataclass
class SwitchProcess:
    workdir: Path
    config_text: str = ""
    process: subprocess.Popen[bytes] | None = None
    reader: LineReader | None = None
    udp_port: int = 0
    tcp_port: int = 0
    stdout_lines: list[str] = field(default_factory=list)
    realm: str = "callcenter"

    @property
    def config_path(self) -> Path:
        return self.workdir / "callcenter.toml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "switch.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "CALLCENTER_DATA_DIR": str(self.workdir / "data"),
                "CALLCENTER_DB_URL": "", "CALLCENTER_SIP_LISTEN": "127.0.0.1:0",
                "CALLCENTER_WEB_LISTEN": "127.0.0.1:0",
                "PYTHONUNBUFFERED": "1"}

    def add_user(self, username: str, password: str, extension: str | None = None,
                 role: str = "agent") -> None:
        url = f"sqlite+aiosqlite:///{self.workdir / 'data' / 'callcenter.sqlite3'}"

        async def add() -> None:
            await upgrade_database(url)
            db = await Database.connect(url)
            try:
                await UserService(db, self.realm).add_user(username, password, extension, role)
            finally:
                await db.close()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(add())
            return
        # Called from a coroutine (an async fixture): a loop of its own, in a thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, add()).result()

    def start(self) -> None:
        self.config_path.write_text(self.config_text or "")
        log = self.log_path.open("w")
        env = self.env()
        env.pop("CALLCENTER_DB_URL")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callcenter", "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.workdir)
        log.close()
        try:
            self._wait_until_listening()
        except BaseException:
            self.process.kill()  # never leave a half-started switch behind
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()  # nor its pipe (a ResourceWarning later)
            raise

    def _wait_until_listening(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        self.reader = LineReader(self.process.stdout)
        while not (self.udp_port and self.tcp_port):
            try:
                line = self.reader.read_line(deadline)
            except TimeoutError:
                raise RuntimeError(f"switch did not start; log:\n{self.log()}") from None
            if line is None:
                raise RuntimeError(f"switch exited ({self.process.wait()}); log:\n{self.log()}")
            self.stdout_lines.append(line)
            match = _LISTEN.search(line)
            if match:
                if match.group(1) == "UDP":
                    self.udp_port = int(match.group(3))
                else:
                    self.tcp_port = int(match.group(3))

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self.process.stdout is not None and not self.process.stdout.closed:
            rest = self.process.stdout.read().decode("utf-8", "replace")
            self.stdout_lines.extend(rest.splitlines(keepends=True))
            self.process.stdout.close()
        return code
