"""An internal call between two registered phones through the running switch, over
loopback UDP. The phones are hand-written SIP on bare sockets, so every assertion is
about bytes the switch really sent; media must be anchored in the switch's RTP range."""

from __future__ import annotations

import math
import re
import socket
import struct
import subprocess
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from switch.media import ulaw_encode
from switch.sip import (
    Request,
    Response,
    SessionDescription,
    build_authorization,
    build_offer,
    build_response,
    negotiate_answer,
)
from tests.conftest import require_tool
from tests.integration.peers import UdpClient, free_udp_port
from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration

RTP_PORTS = (41000, 41099)
# MD5 first: SIPp answers only an MD5 challenge (see test_sipp_register.py).
CONFIG = (f'[rtp]\nports = "{RTP_PORTS[0]}-{RTP_PORTS[1]}"\n'
          '[sip.auth]\nalgorithms = ["MD5", "SHA-256"]\n'
          '[[routes]]\nextension = true\n')
SCENARIOS = Path(__file__).parent / "sipp"
PASSWORDS = {"2001": "caller-pass-2001", "2002": "callee-pass-2002"}


def media_of(sdp: bytes) -> tuple[str, int]:
    session = SessionDescription.parse(sdp)
    media = session.media[0]
    connection = media.connection or session.connection
    assert connection is not None
    return connection.address, media.port


class Phone:
    """Just enough of a UA for one call: REGISTER, INVITE/ACK/BYE/CANCEL, answering."""

    def __init__(self, switch: SwitchProcess, extension: str) -> None:
        self.switch = switch
        self.extension = extension
        self.udp = UdpClient()
        self.tag = uuid.uuid4().hex[:8]
        self.cseq = 0
        # The phone's RTP socket: what its SDP advertises, and where audio arrives.
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.settimeout(5.0)
        self.rtp_port = int(self.rtp.getsockname()[1])

    def close(self) -> None:
        self.udp.close()
        self.rtp.close()

    def send_tone(self, port: int, ssrc: int, n_packets: int = 10) -> list[bytes]:
        """RTP/PCMU 20 ms packets of a 1 kHz tone to the switch; returns the payloads."""
        samples = array("h", (int(8000 * math.sin(2 * math.pi * 1000 * n / 8000))
                              for n in range(160 * n_packets)))
        pcmu = ulaw_encode(samples.tobytes())
        payloads = [pcmu[160 * k: 160 * (k + 1)] for k in range(n_packets)]
        for k, payload in enumerate(payloads):
            header = struct.pack("!BBHII", 0x80, 0, 100 + k, 160 * k, ssrc)
            self.rtp.sendto(header + payload, ("127.0.0.1", port))
        return payloads

    def receive_audio(self, n_packets: int) -> tuple[list[bytes], set[int], set[int]]:
        """(payloads, source ports, SSRCs) of the next RTP packets that arrive."""
        payloads, ports, ssrcs = [], set(), set()
        for _ in range(n_packets):
            data, (_, port) = self.rtp.recvfrom(2048)
            ports.add(port)
            ssrcs.add(struct.unpack("!I", data[8:12])[0])
            payloads.append(data[12:])
        return payloads, ports, ssrcs

    @property
    def contact(self) -> str:
        return f"<sip:{self.extension}@127.0.0.1:{self.udp.port}>"

    def _via(self, branch: str | None = None) -> str:
        branch = branch or f"z9hG4bK{uuid.uuid4().hex}"
        return f"SIP/2.0/UDP 127.0.0.1:{self.udp.port};branch={branch};rport"

    def _request(self, method: str, uri: str, to: str, call_id: str, cseq: int, *,
                 via: str | None = None, body: bytes = b"", from_: str | None = None,
                 extra: tuple[str, ...] = ()) -> bytes:
        from_ = from_ or f"<sip:{self.extension}@127.0.0.1>;tag={self.tag}"
        lines = [f"{method} {uri} SIP/2.0", f"Via: {via or self._via()}", "Max-Forwards: 70",
                 f"From: {from_}", f"To: {to}",
                 f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", f"Contact: {self.contact}",
                 *extra]
        if body:
            lines.append("Content-Type: application/sdp")
        return ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    def send(self, data: bytes) -> None:
        self.udp.send(data, self.switch.udp_port)

    def response(self, method: str, *, final: bool = True, timeout_s: float = 10.0) -> Response:
        """The next response to `method` (skipping 100, and every 1xx when `final`)."""
        while True:
            message = self.udp.receive(timeout_s)
            assert message is not None, f"{self.extension}: no response to {method}"
            if isinstance(message, Response) and message.cseq.method == method:
                if message.status == 100 or (final and message.status < 200):
                    continue
                return message

    def request(self, method: str, timeout_s: float = 10.0) -> Request:
        while True:
            message = self.udp.receive(timeout_s)
            assert message is not None, f"{self.extension}: no {method} came"
            if isinstance(message, Request) and message.method == method:
                return message

    def _with_auth(self, method: str, uri: str, to: str, call_id: str,
                   body: bytes = b"") -> tuple[Response | None, str]:
        """Send, answer the 401 challenge; the branch of the authenticated request and,
        except for INVITE (whose answer waits for the callee), the response to it."""
        self.cseq += 1
        self.send(self._request(method, uri, to, call_id, self.cseq, body=body))
        challenge = self.response(method)
        assert challenge.status == 401, challenge
        value = challenge.headers.get("WWW-Authenticate")
        assert value is not None
        if method == "INVITE":  # a non-2xx final: ACK in its transaction (§17.1.1.3)
            self.send(self._request("ACK", uri, challenge.to.serialize(), call_id, self.cseq,
                                    via=challenge.headers.get_all("Via")[0]))
        authorization = build_authorization(value, method, uri, self.extension,
                                            password=PASSWORDS[self.extension],
                                            cnonce="c0ffee", nc=1, body=body)
        self.cseq += 1
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        self.send(self._request(method, uri, to, call_id, self.cseq, via=self._via(branch),
                                body=body, extra=(f"Authorization: {authorization}",)))
        return (None if method == "INVITE" else self.response(method)), branch

    def register(self) -> None:
        to = f"<sip:{self.extension}@127.0.0.1>"
        response, _ = self._with_auth("REGISTER", "sip:127.0.0.1", to, uuid.uuid4().hex)
        assert response is not None and response.status == 200, response

    # -- caller side

    def call(self, extension: str) -> OutgoingCall:
        call_id = uuid.uuid4().hex
        uri, to = f"sip:{extension}@127.0.0.1", f"<sip:{extension}@127.0.0.1>"
        offer = build_offer("127.0.0.1", self.rtp_port, session_id=1,
                            session_version=1).serialize()
        _, branch = self._with_auth("INVITE", uri, to, call_id, body=offer)
        return OutgoingCall(self, uri, to, call_id, self.cseq, branch)

    # -- callee side

    def answer(self, invite: Request, status: int, to_tag: str, body: bytes = b"") -> None:
        response = build_response(invite, status, to_tag=to_tag, body=body)
        if body:
            response.headers.add("Content-Type", "application/sdp")
        if status < 300:
            response.headers.add("Contact", self.contact)
        self.send(response.serialize())

    def answer_offer(self, invite: Request, to_tag: str) -> None:
        negotiation = negotiate_answer(
            SessionDescription.parse(invite.body), local_address="127.0.0.1",
            local_port=self.rtp_port, session_id=2, session_version=1)
        self.answer(invite, 200, to_tag, negotiation.answer.serialize())

    def hang_up_incoming(self, invite: Request, to_tag: str) -> None:
        """BYE on a call this phone answered: the tags swap sides."""
        self.cseq += 1
        self.send(self._request("BYE", invite.contacts[0].uri.serialize(),
                                invite.from_.serialize(), invite.call_id, self.cseq,
                                from_=invite.to.with_tag(to_tag).serialize()))

    def reply(self, request: Request, status: int = 200) -> None:
        self.send(build_response(request, status).serialize())


class OutgoingCall:
    def __init__(self, phone: Phone, uri: str, to: str, call_id: str, cseq: int,
                 branch: str) -> None:
        self.phone, self.uri, self.to, self.call_id = phone, uri, to, call_id
        self.cseq, self.branch = cseq, branch

    def final(self) -> Response:
        return self.phone.response("INVITE")

    def ack(self, response: Response) -> None:
        phone = self.phone
        if response.status < 300:
            target = response.contacts[0].uri.serialize()
            via = None  # a 2xx ACK is its own transaction (§13.2.2.4)
        else:
            target, via = self.uri, phone._via(self.branch)
        phone.send(phone._request("ACK", target, response.to.serialize(), self.call_id,
                                  self.cseq, via=via))

    def cancel(self) -> None:
        phone = self.phone
        phone.send(phone._request("CANCEL", self.uri, self.to, self.call_id, self.cseq,
                                  via=phone._via(self.branch)))

    def bye(self, answer: Response) -> None:
        phone = self.phone
        phone.cseq += 1
        phone.send(phone._request("BYE", answer.contacts[0].uri.serialize(),
                                  answer.to.serialize(), self.call_id, phone.cseq))


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[tuple[SwitchProcess, Phone, Phone]]:
    switch = SwitchProcess(tmp_path, CONFIG)
    for extension in PASSWORDS:
        switch.add_user(f"user{extension}", PASSWORDS[extension], extension)
    switch.start()
    caller, callee = Phone(switch, "2001"), Phone(switch, "2002")
    try:
        callee.register()
        yield switch, caller, callee
    finally:
        caller.close()
        callee.close()
        switch.stop()


def test_call_is_answered_with_media_anchored_and_bye_ends_both(
        phones: tuple[SwitchProcess, Phone, Phone]) -> None:
    switch, caller, callee = phones
    call = caller.call("2002")
    invite = callee.request("INVITE")
    # The callee is offered the switch's RTP port, not the caller's.
    address, port = media_of(invite.body)
    assert address == "127.0.0.1" and RTP_PORTS[0] <= port <= RTP_PORTS[1]
    callee.answer(invite, 180, "callee1")
    assert caller.response("INVITE", final=False).status == 180
    callee.answer_offer(invite, "callee1")
    answer = call.final()
    assert answer.status == 200
    address, port = media_of(answer.body)
    assert address == "127.0.0.1" and RTP_PORTS[0] <= port <= RTP_PORTS[1]
    assert port != callee.rtp_port
    call.ack(answer)
    callee.request("ACK")

    call.bye(answer)
    bye = callee.request("BYE")
    callee.reply(bye)
    assert caller.response("BYE").status == 200
    # The call is gone from the switch: another BYE in that dialog matches nothing.
    call.bye(answer)
    assert caller.response("BYE").status == 481
    assert switch.alive()


def test_audio_crosses_the_switch_both_ways(
        phones: tuple[SwitchProcess, Phone, Phone]) -> None:
    switch, caller, callee = phones
    call = caller.call("2002")
    invite = callee.request("INVITE")
    _, switch_port_for_callee = media_of(invite.body)
    callee.answer_offer(invite, "callee1")
    answer = call.final()
    _, switch_port_for_caller = media_of(answer.body)
    call.ack(answer)
    callee.request("ACK")

    sent = caller.send_tone(switch_port_for_caller, ssrc=0xCA11E5)
    heard, ports, ssrcs = callee.receive_audio(len(sent))
    assert heard == sent  # the tone arrives intact (PCMU both sides: relayed, not re-encoded)
    assert ports == {switch_port_for_callee}  # from the switch, not from the caller
    assert 0xCA11E5 not in ssrcs  # the switch is the RTP source toward the callee

    sent = callee.send_tone(switch_port_for_callee, ssrc=0xCA11EE)
    heard, ports, _ = caller.receive_audio(len(sent))
    assert heard == sent and ports == {switch_port_for_caller}
    call.bye(answer)
    callee.reply(callee.request("BYE"))
    assert caller.response("BYE").status == 200
    assert switch.alive()


def test_callee_hangs_up_and_the_caller_gets_bye(
        phones: tuple[SwitchProcess, Phone, Phone]) -> None:
    _, caller, callee = phones
    call = caller.call("2002")
    invite = callee.request("INVITE")
    callee.answer_offer(invite, "callee1")
    answer = call.final()
    assert answer.status == 200
    call.ack(answer)
    callee.request("ACK")
    callee.hang_up_incoming(invite, "callee1")
    caller_bye = caller.request("BYE")
    caller.reply(caller_bye)
    assert callee.response("BYE").status == 200


def test_cancel_before_answer_gives_the_caller_487(
        phones: tuple[SwitchProcess, Phone, Phone]) -> None:
    _, caller, callee = phones
    call = caller.call("2002")
    invite = callee.request("INVITE")
    callee.answer(invite, 180, "callee1")
    assert caller.response("INVITE", final=False).status == 180
    call.cancel()
    assert caller.response("CANCEL").status == 200
    cancel = callee.request("CANCEL")
    callee.reply(cancel)
    callee.answer(invite, 487, "callee1")
    final = call.final()
    assert final.status == 487
    call.ack(final)


def test_busy_callee_gives_the_caller_486(phones: tuple[SwitchProcess, Phone, Phone]) -> None:
    _, caller, callee = phones
    call = caller.call("2002")
    invite = callee.request("INVITE")
    callee.answer(invite, 486, "callee1")
    assert callee.request("ACK").method == "ACK"
    final = call.final()
    assert (final.status, final.reason) == (486, "Busy Here")
    call.ack(final)


def test_unregistered_callee_gives_480(phones: tuple[SwitchProcess, Phone, Phone]) -> None:
    switch, caller, _ = phones
    call = caller.call("2001")  # a known extension whose phone never registered
    final = call.final()
    assert final.status == 480
    call.ack(final)
    assert switch.alive()


def test_sipp_caller_is_answered_through_the_switch_with_media_anchored(
        phones: tuple[SwitchProcess, Phone, Phone], tmp_path: Path) -> None:
    switch, _, callee = phones
    sipp = require_tool("sipp", "Debian package sip-tester")
    csv = tmp_path / "caller.csv"
    csv.write_text("SEQUENTIAL\n2001;\n")
    trace = tmp_path / "sipp_messages.log"
    process = subprocess.Popen(
        [sipp, f"127.0.0.1:{switch.udp_port}", "-sf", str(SCENARIOS / "uac_call_auth.xml"),
         "-inf", str(csv), "-s", "2002", "-i", "127.0.0.1", "-p", str(free_udp_port()),
         "-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_msg",
         "-message_file", str(trace), "-au", "2001", "-ap", PASSWORDS["2001"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        invite = callee.request("INVITE")
        assert media_of(invite.body)[1] != 6000  # SIPp's port stays behind the switch
        callee.answer(invite, 180, "callee1")
        callee.answer_offer(invite, "callee1")
        callee.request("ACK")
        bye = callee.request("BYE")  # SIPp hung up; the switch passes it on
        callee.reply(bye)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out[-2000:] + err[-2000:]
    # What SIPp received in the 200 OK: the switch's RTP port, never the callee's.
    ports = {int(port) for port in re.findall(r"m=audio (\d+)", trace.read_text())}
    assert callee.rtp_port not in ports
    assert any(RTP_PORTS[0] <= port <= RTP_PORTS[1] for port in ports), ports
