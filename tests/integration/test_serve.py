"""`callcenter serve` as a newcomer meets it: demo accounts on the first start, what it
listens on, clean shutdown on SIGTERM and SIGINT, and its connection limits."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.integration.peers import UdpClient
from tests.integration.switch_process import SwitchProcess
from tests.integration.test_wire_robustness import options, probe_after

pytestmark = pytest.mark.integration


def test_first_start_seeds_demo_accounts_once(tmp_path: Path) -> None:
    first = SwitchProcess(tmp_path)
    first.start()
    assert first.stop() == 0
    printed = "".join(first.stdout_lines)
    assert "Demo accounts created (passwords are shown only this once):" in printed
    for extension in ("1000", "1001", "1002", "1003", "1004"):
        assert f"extension {extension}" in printed
    assert "Shutting down" in printed

    again = SwitchProcess(tmp_path)
    again.start()
    assert again.stop() == 0
    assert "Demo accounts" not in "".join(again.stdout_lines)


def test_demo_password_registers_a_phone(tmp_path: Path) -> None:
    from switch.sip import build_authorization
    from tests.integration.test_no_enumeration import request

    switch = SwitchProcess(tmp_path)
    switch.start()
    line = next(line for line in switch.stdout_lines if "extension 1001" in line)
    password = line.split("password ")[1].strip()
    client = UdpClient()
    try:
        challenge = client.request(request("REGISTER", "1001", switch.udp_port, client),
                                   switch.udp_port)
        assert challenge is not None and challenge.status == 401
        auth = build_authorization(challenge.headers.get_all("WWW-Authenticate")[0],
                                   "REGISTER", "sip:127.0.0.1", "1001", password=password,
                                   cnonce="c1", nc=1)
        ok = client.request(request("REGISTER", "1001", switch.udp_port, client, auth, 2),
                            switch.udp_port)
        assert ok is not None and ok.status == 200
    finally:
        client.close()
        switch.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(tmp_path: Path, signum: int) -> None:
    switch = SwitchProcess(tmp_path)
    switch.start()
    assert switch.process is not None
    switch.process.send_signal(signum)
    assert switch.stop() == 0
    assert "Shutting down" in "".join(switch.stdout_lines)
    assert "Traceback" not in switch.log()
    assert "SIP totals: 0 received, 0 malformed" in switch.log()


def test_tcp_connection_limit(tmp_path: Path) -> None:
    switch = SwitchProcess(tmp_path, "[sip]\nmax_tcp_connections = 2\n")
    switch.start()
    try:
        kept = [socket.create_connection(("127.0.0.1", switch.tcp_port), timeout=5)
                for _ in range(2)]
        refused = socket.create_connection(("127.0.0.1", switch.tcp_port), timeout=5)
        assert refused.recv(1) == b""  # closed by the switch at once
        refused.close()
        client = UdpClient()
        request = options(client).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        kept[0].sendall(request)
        assert kept[0].recv(65535).startswith(b"SIP/2.0 200 OK")
        for sock in kept:
            sock.close()
        client.close()
    finally:
        switch.stop()
    assert "refusing TCP connection from 127.0.0.1" in switch.log()


def test_oversize_datagram_is_dropped(tmp_path: Path) -> None:
    switch = SwitchProcess(tmp_path, "[sip]\nmax_message_bytes = 2000\n")
    switch.start()
    client = UdpClient()
    try:
        padded = options(client).replace(b"Max-Forwards", b"X-Pad: " + b"a" * 3000 +
                                          b"\r\nMax-Forwards")
        client.send(padded, switch.udp_port)
        assert probe_after(client, switch.udp_port) == []  # no answer to the oversize one
    finally:
        client.close()
        switch.stop()
    # the probe only; the oversize datagram is dropped unparsed and counted
    assert "SIP totals: 1 received, 0 malformed, 1 oversize dropped" in switch.log()
