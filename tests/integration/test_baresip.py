"""baresip, a real softphone, registers with the switch using digest auth."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.conftest import AGENT_PASSWORD
from tests.integration.peers import LineReader, free_udp_port
from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration

CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
audio_player aufile,/dev/null
audio_source ausine,440
audio_alert aufile,/dev/null
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aufile.so
module_app account.so
"""


def test_baresip_registers(switch: SwitchProcess, tmp_path: Path) -> None:
    baresip = require_tool("baresip", "Debian package baresip")
    home = tmp_path / "baresip"
    home.mkdir()
    (home / "config").write_text(CONFIG.format(sip_port=free_udp_port()))
    (home / "accounts").write_text(
        f"<sip:1001@127.0.0.1:{switch.udp_port};transport=udp>"
        f";auth_pass={AGENT_PASSWORD};regint=600\n")
    process = subprocess.Popen([baresip, "-4", "-f", str(home)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = LineReader(process.stdout).wait_for(r"200 OK|[45]\d\d ")
        assert "200 OK" in line, line
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    assert "extension 1001 registered" in switch.log()
