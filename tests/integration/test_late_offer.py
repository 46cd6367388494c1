"""A late offer from a real phone: SIPp calls out through the switch to the PSTN (the
PRI gateway emulator) with an INVITE without SDP. The switch's 200 carries its offer,
SIPp answers in the ACK and echoes the RTP it gets; the gateway's tone crossing the
switch to SIPp and back shows media flows both ways on the late-offer leg."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from tests.conftest import require_tool
from tests.integration.test_pri_calls import (
    CUSTOMER_NATIONAL,
    GATEWAY_TONE_HZ,
    OUTSIDE_LINE,
    PHONE,
    PHONE_PASSWORD,
    PREPEND,
    SCENARIOS,
    SWITCH_RTP,
    Pri,
    ended,
    free_udp_port,
    heard,
    pri,  # noqa: F401 - the fixture
    until,
    wait,
)

pytestmark = pytest.mark.integration


async def test_sipp_late_offer_call_to_the_pstn_has_audio_both_ways(
        pri: Pri) -> None:  # noqa: F811
    sipp = require_tool("sipp", "Debian package sip-tester")
    media_port = free_udp_port("127.0.0.1") // 2 * 2
    trace = pri.tmp_path / "sipp_messages.log"
    users = pri.tmp_path / "sipp_users.csv"
    users.write_text(f"SEQUENTIAL\n{PHONE};\n")
    process = subprocess.Popen(
        [sipp, f"127.0.0.1:{pri.switch.udp_port}", "-sf",
         str(SCENARIOS / "uac_late_offer.xml"), "-s", OUTSIDE_LINE + CUSTOMER_NATIONAL,
         "-i", "127.0.0.1",
         "-p", str(free_udp_port("127.0.0.1")), "-mp", str(media_port), "-rtp_echo",
         "-m", "1", "-au", PHONE, "-ap", PHONE_PASSWORD, "-inf", str(users),
         "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_msg",
         "-message_file", str(trace)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=pri.tmp_path)
    try:
        await until(lambda: bool(pri.gateway.calls), "the call to reach the gateway")
        far = pri.gateway_call()
        await wait(far.answered.wait(), "the PSTN to answer")
        await ended(far)
        out, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out[-2000:] + err[-2000:]
    assert far.called == PREPEND + CUSTOMER_NATIONAL
    # The PSTN party's tone went to SIPp through the switch and came back the same way.
    assert abs(heard(far.recording_path) - GATEWAY_TONE_HZ) < 10
    messages = trace.read_text()
    offered = re.search(r"m=audio (\d+) RTP/AVP 0 8 101", messages)  # in our 200
    assert offered is not None and SWITCH_RTP[0] <= int(offered.group(1)) <= SWITCH_RTP[1]
    cdr = await pri.cdr()
    assert (cdr["direction"], cdr["caller"], cdr["disposition"]) == (
        "outbound", PHONE, "answered")

