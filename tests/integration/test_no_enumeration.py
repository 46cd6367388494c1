"""An attacker cannot tell existing extensions from missing ones (svwar), and password
guessing gets the source banned."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from switch.sip import Response, build_authorization
from tests.conftest import require_tool
from tests.integration.peers import UdpClient
from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_svwar_finds_no_extension(switch: SwitchProcess, method: str) -> None:
    svwar = require_tool("svwar", "Debian package sipvicious")
    result = subprocess.run(
        [svwar, "-e1000-1010", "-m", method, "-p", str(switch.udp_port), "127.0.0.1"],
        capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert "1001" not in output, output
    # svwar ran and reached the switch: every probe got the same 401 challenge.
    assert switch.alive()


def request(method: str, user: str, port: int, client: UdpClient,
            authorization: str | None = None, cseq: int = 1, via_params: str = ";rport",
            via_host: str = "127.0.0.1") -> bytes:
    lines = [
        f"{method} sip:{user}@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP {via_host}:{client.port};branch=z9hG4bK{uuid.uuid4().hex}"
        f"{via_params}",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:{user}@127.0.0.1>",
        f"Call-ID: {uuid.uuid4().hex}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{user}@127.0.0.1:{client.port}>",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def challenged_with_wrong_password(user: str, switch: SwitchProcess, client: UdpClient,
                                   via_params: str = ";rport",
                                   via_host: str = "127.0.0.1") -> Response | None:
    first = client.request(request("REGISTER", user, switch.udp_port, client,
                                   via_params=via_params, via_host=via_host),
                           switch.udp_port)
    assert first is not None and first.status == 401
    challenge = first.headers.get("WWW-Authenticate")
    assert challenge is not None
    auth = build_authorization(challenge, "REGISTER", "sip:127.0.0.1", user,
                               password="wrong-guess", cnonce="abc", nc=1)
    return client.request(request("REGISTER", user, switch.udp_port, client, auth, 2,
                                  via_params=via_params, via_host=via_host),
                          switch.udp_port)


def shape(response: Response) -> tuple[int, str, list[str]]:
    """What an attacker can compare: status, phrase, header names and challenge params."""
    challenges = [v.split("nonce=")[0] + v.split("nonce=")[1].split(",", 1)[1]
                  for v in response.headers.get_all("WWW-Authenticate")]
    return response.status, response.reason, [k for k, _ in response.headers] + challenges


def test_unknown_user_and_wrong_password_look_identical(switch: SwitchProcess) -> None:
    client = UdpClient()
    try:
        known = challenged_with_wrong_password("1001", switch, client)
        unknown = challenged_with_wrong_password("1999", switch, client)
    finally:
        client.close()
    assert known is not None and unknown is not None
    assert known.status == 401
    assert shape(known) == shape(unknown)


def test_password_guessing_bans_the_source(switch: SwitchProcess) -> None:
    client = UdpClient()
    try:
        for _ in range(5):  # [sip.bans] max_failures defaults to 5
            assert challenged_with_wrong_password("1001", switch, client) is not None
        options = request("OPTIONS", "1001", switch.udp_port, client)
        assert client.request(options, switch.udp_port, timeout_s=1.0) is None
    finally:
        client.close()
    assert "banned 127.0.0.1 for 600 s after 5 failed authentications" in switch.log()


# --- the packet's source, never what the sender wrote into its Via --------------------

def test_a_guesser_claiming_other_addresses_in_via_is_banned_itself(
        switch: SwitchProcess) -> None:
    """Each guess claims another `received=` (and `rport=`): the ban still falls on the
    address the packets come from, and the 401s still come back to it."""
    client = UdpClient("127.0.0.20")
    try:
        for i in range(5):
            claim = f";received=127.0.0.{101 + i};rport=5{i}00"
            assert challenged_with_wrong_password("1001", switch, client, claim) is not None
        options = request("OPTIONS", "1001", switch.udp_port, client)
        assert client.request(options, switch.udp_port, timeout_s=1.0) is None
    finally:
        client.close()
    log = switch.log()
    assert "banned 127.0.0.20 for 600 s after 5 failed authentications" in log
    assert "banned 127.0.0.10" not in log


def test_a_claimed_received_gets_nobody_else_banned_or_flooded(
        switch: SwitchProcess) -> None:
    """From 127.0.0.21, five bad guesses claiming `received=127.0.0.30` (and sent-by
    127.0.0.30 at the same port): the 401s go to 127.0.0.21, none to 127.0.0.30, and
    127.0.0.30 is still served afterwards."""
    attacker = UdpClient("127.0.0.21")
    victim = UdpClient("127.0.0.30", attacker.port)
    try:
        for claim in (";received=127.0.0.30", ";received=127.0.0.30;rport"):
            for _ in range(2):
                assert challenged_with_wrong_password(
                    "1001", switch, attacker, claim, via_host="127.0.0.30") is not None
        assert challenged_with_wrong_password(
            "1001", switch, attacker, ";received=127.0.0.30;rport=9") is not None
        assert victim.queued() == []  # nothing was aimed at it
        options = request("OPTIONS", "1001", switch.udp_port, victim)
        assert victim.request(options, switch.udp_port) is not None
    finally:
        attacker.close()
        victim.close()
    log = switch.log()
    assert "banned 127.0.0.21 for 600 s" in log
    assert "banned 127.0.0.30" not in log
