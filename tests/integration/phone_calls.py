"""The PSTN side for calls to and from real softphones (pyVoIP, baresip): the switch
configured as in test_pri_calls (DID 4008001001 routed to extension 1001, prefix 9 out
through the trunk group "pstn"), the gateway emulator on 127.0.0.2, and the CDR rows.

Unlike test_pri_calls' `pri_setup` there is no emulated agent phone here: the phone
under test registers extension 1001 itself."""

from __future__ import annotations

import asyncio
import sqlite3
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from switch.pri_gateway.emulator import EmulatedCall, GatewayEmulator
from tests.integration.switch_process import SwitchProcess
from tests.integration.test_pri_calls import (
    GATEWAY_HOST,
    GATEWAY_TONE_HZ,
    free_udp_port,
    hang_up_everything,
    make_switch,
    until,
)

# Apart from test_pri_calls' ranges, so a leftover socket there never collides here.
GATEWAY_RTP = (43400, 43499)


@dataclass
class Pstn:
    switch: SwitchProcess
    gateway: GatewayEmulator

    @property
    def db_path(self) -> Path:
        return self.switch.workdir / "data" / "callcenter.sqlite3"

    def closed_cdrs(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(
                "SELECT * FROM calls WHERE state = 'closed' ORDER BY id")]

    async def cdr(self) -> dict[str, Any]:
        """The one CDR a test's single call leaves, once it is closed."""
        await until(lambda: bool(self.closed_cdrs()), "the CDR to be closed")
        rows = self.closed_cdrs()
        assert len(rows) == 1, rows
        return rows[0]

    def legs(self, call_id: str) -> list[tuple[int, str]]:
        with sqlite3.connect(self.db_path) as db:
            return db.execute("SELECT leg_index, peer FROM call_legs WHERE call_id = ? "
                              "ORDER BY leg_index", (call_id,)).fetchall()

    def gateway_call(self) -> EmulatedCall:
        """The call the switch sent to the PSTN."""
        calls = [c for c in self.gateway.calls.values() if not c.placed]
        assert calls, "the gateway received no call"
        return calls[-1]


@asynccontextmanager
async def pstn_setup(tmp_path: Path) -> AsyncIterator[Pstn]:
    """The switch and the gateway emulator (answering with its 1000 Hz tone); the phone
    under test is the test's to start and register."""
    gw_port = free_udp_port(GATEWAY_HOST)
    # add_user runs its own event loop: not on ours.
    switch = await asyncio.to_thread(make_switch, tmp_path, gw_port=gw_port)
    await asyncio.to_thread(switch.start)
    try:
        gateway = GatewayEmulator(GATEWAY_HOST, gw_port, switch=("127.0.0.1", switch.udp_port),
                                  media_ports=GATEWAY_RTP, recordings_dir=tmp_path / "gw",
                                  answer_audio=("tone", GATEWAY_TONE_HZ))
        async with gateway:
            try:
                yield Pstn(switch, gateway)
            finally:
                # Whatever a failing test left up, so the switch stops without draining.
                await hang_up_everything(gateway)
    finally:
        if switch.alive():
            await asyncio.to_thread(switch.stop)
        print(switch.log())  # shown by pytest when the test failed


def wav_samples(path: Path) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A mono 16-bit 8 kHz WAV as floats."""
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data.astype(np.float64)
