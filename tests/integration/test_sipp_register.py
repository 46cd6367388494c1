"""SIPp (Debian sip-tester) registers with digest auth against the running switch."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.conftest import AGENT_PASSWORD
from tests.integration.switch_process import SwitchProcess

# SIPp 3.6 answers only the first challenge and only with MD5 (createAuthHeader:
# "authentication must use MD5"), like some old phones: the documented setting for them.
pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("switch", ['[sip.auth]\nalgorithms = ["MD5", "SHA-256"]\n'],
                                      indirect=True)]
SCENARIOS = Path(__file__).parent / "sipp"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_sipp(switch: SwitchProcess, scenario: str, users: list[tuple[str, str]],
             tmp_path: Path, *, transport: str = "u1", calls: int = 1,
             rate: int = 10) -> subprocess.CompletedProcess[str]:
    sipp = require_tool("sipp", "Debian package sip-tester")
    csv = tmp_path / "users.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{u};\n" for u, _ in users))
    username, password = users[0]  # SIPp answers every challenge with -au/-ap
    port = switch.udp_port if transport.startswith("u") else switch.tcp_port
    return subprocess.run(
        [sipp, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / scenario), "-inf", str(csv),
         "-t", transport, "-i", "127.0.0.1", "-p", str(free_port()), "-m", str(calls),
         "-r", str(rate), "-timeout", "20s", "-timeout_error", "-nostdin",
         "-trace_err", "-error_file", str(tmp_path / "sipp_errors.log"),
         "-au", username, "-ap", password],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_sipp_registers_over_udp_with_digest(switch: SwitchProcess, tmp_path: Path) -> None:
    result = run_sipp(switch, "register_auth.xml", [("1001", AGENT_PASSWORD)], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "extension 1001 registered" in switch.log()


def test_sipp_registers_over_tcp_with_digest(switch: SwitchProcess, tmp_path: Path) -> None:
    result = run_sipp(switch, "register_auth.xml", [("1001", AGENT_PASSWORD)], tmp_path,
                      transport="t1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "extension 1001 registered" in switch.log()


def test_sipp_wrong_password_is_challenged_again(switch: SwitchProcess,
                                                 tmp_path: Path) -> None:
    result = run_sipp(switch, "register_auth_rejected.xml", [("1001", "not-the-password")],
                      tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "registered" not in switch.log()
    assert "authentication failed for '1001'" in switch.log()
