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

REGISTER_TIMEOUT_S = 8.0

# baresip 1.0.0 (Debian bookworm) signs with libre 1.1.0, whose digest code knows MD5
# alone and gives up on the whole 401 with ENOSYS ("Register: Function not
# implemented") as soon as any WWW-Authenticate names another algorithm, in whatever
# order. The switch's default challenge offers SHA-256 and MD5, so this phone needs
# the switch configured the way an operator with such phones would configure it.
MD5_ONLY = '[sip.auth]\nalgorithms = ["MD5"]\n'

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

# The outcome of a REGISTER as baresip prints it: a final status such as
# "... 200 OK (callcenter) [1 binding]" or "... 403 Forbidden", or a local failure
# such as "reg: ...: Register: Function not implemented".
_OUTCOME = r"\b[2-6]\d\d [A-Z]|Register: "


@pytest.mark.parametrize("switch", [MD5_ONLY], indirect=True)
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
    assert process.stdout is not None
    reader = LineReader(process.stdout)
    try:
        line = reader.wait_for(_OUTCOME, REGISTER_TIMEOUT_S)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    assert "200 OK" in line, "".join(reader.lines)
    # The switch logs the binding before it sends the 200, so it is there by now.
    assert "extension 1001 registered" in switch.log()
